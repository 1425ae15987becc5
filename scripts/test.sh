#!/usr/bin/env bash
# Run envprint's tests on a fresh machine: creates ./.venv, installs envprint[tensorflow-cpu,test],
# lints, then runs pytest. Extra arguments go to pytest (e.g. scripts/test.sh -k diff).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
echo "== ruff"
ruff check envprint tests scripts
echo "== pytest"
python -m pytest "$@"
