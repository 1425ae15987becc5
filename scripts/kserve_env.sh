#!/usr/bin/env bash
# Make ./.venv-kserve (once): KServe's Python ModelServer (kserve from PyPI) with TensorFlow CPU, for
# the endpoint tests that verify a model served by the real KServe server on V1 and the Open Inference
# Protocol (tests/test_endpoint_kserve.py runs tests/servers/kserve_server.py with this venv's python).
# Apart from ./.venv because kserve pins protobuf 6 and pandas 2, which would downgrade the main venv's.
# TensorFlow and Keras are the main venv's own versions (read from the python on PATH when it has
# them), so the served model runs on the same backend and kernels as the record: same outputs.
# Prints the venv's python on stdout; pip's chatter goes to stderr. Quick when nothing changed:
# a stamp records the pins, so only new pins reinstall.
#
#   ENVPRINT_KSERVE_PYTHON=$(scripts/kserve_env.sh) python -m pytest tests/test_endpoint_kserve.py
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv-kserve
version_of() { python -c "import importlib.metadata as m; print(m.version('$1'))" 2>/dev/null || true; }
tf=$(version_of tensorflow-cpu)
tf=${tf:-$(version_of tensorflow)}
keras=$(version_of keras)
PINS="kserve==0.21.0 tensorflow-cpu==${tf:-2.21.0} keras==${keras:-3.15.1}"
STAMP="$VENV/.envprint-stamp"

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$PINS" ]; then
  echo "$PWD/$VENV/bin/python"
  exit 0
fi

start=$SECONDS
echo "== creating $VENV ($PINS); once per machine, a few minutes" >&2
rm -rf "$VENV"
python3 -m venv "$VENV"
echo "*" >"$VENV/.gitignore" # never committed, whatever the repo's ignores say
# shellcheck disable=SC2086  # PINS is a list of requirements
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check $PINS 2>&1 \
  | { grep -v "^WARNING: Location" || true; } >&2
"$VENV/bin/python" -c 'import kserve, keras, tensorflow' 2>/dev/null \
  || { echo "kserve_env.sh: $VENV cannot import kserve, keras and tensorflow" >&2; exit 2; }
echo "$PINS" >"$STAMP"
echo "== $VENV ready in $((SECONDS - start)) s ($(du -sh "$VENV" | cut -f1))" >&2
echo "$PWD/$VENV/bin/python"
