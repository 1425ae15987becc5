#!/usr/bin/env bash
# Run envprint's tests on a fresh machine: creates ./.venv, installs envprint[tensorflow-cpu,test],
# lints, then runs pytest. Extra arguments go to pytest (e.g. scripts/test.sh -k diff).
# The cross-version tests also need ./.venv-tf215 (TensorFlow 2.15, made once by
# scripts/old_tf_env.sh, about a minute); ENVPRINT_SKIP_OLD_TF=1 skips them, and an
# ENVPRINT_OLD_TF_PYTHON already set is used as it is.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
echo "== ruff"
ruff check envprint tests scripts
if [ "${ENVPRINT_SKIP_OLD_TF:-}" = 1 ]; then
  echo "== TensorFlow 2.15 env: skipped (ENVPRINT_SKIP_OLD_TF=1); tests/test_cross_version.py will skip"
  unset ENVPRINT_OLD_TF_PYTHON
elif [ -z "${ENVPRINT_OLD_TF_PYTHON:-}" ]; then
  echo "== TensorFlow 2.15 env (for tests/test_cross_version.py)"
  ENVPRINT_OLD_TF_PYTHON=$(bash scripts/old_tf_env.sh)
  export ENVPRINT_OLD_TF_PYTHON
fi
echo "== pytest"
python -m pytest "$@"
