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
# tests/test_html_report.py opens the HTML report in a real headless browser: Debian's chromium.
if ! command -v chromium > /dev/null && ! command -v chromium-browser > /dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "== chromium (for tests/test_html_report.py)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium > /dev/null; } \
      || echo "== chromium could not be installed: the browser tests of tests/test_html_report.py will skip"
  else
    echo "== chromium not installed and not root: the browser tests of tests/test_html_report.py will skip"
  fi
fi
echo "== pytest"
python -m pytest "$@"
