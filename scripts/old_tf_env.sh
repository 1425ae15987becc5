#!/usr/bin/env bash
# Make ./.venv-tf215 (once): the oldest TensorFlow envprint supports (2.15: Keras 2, NumPy 1.x),
# with envprint and its test dependencies installed editable from this checkout, for the
# cross-version tests (tests/test_cross_version.py: saved under the newest TensorFlow, verified
# under this one) and for scripts/test.sh's Keras 2 pass (part of the suite run under this one).
# Prints the venv's python on stdout; pip's chatter goes to stderr. Quick when nothing changed:
# a stamp records the pin and pyproject.toml, so only a new pin or new dependencies reinstall.
#
#   ENVPRINT_OLD_TF_PYTHON=$(scripts/old_tf_env.sh) python -m pytest tests/test_cross_version.py
#
# TensorFlow 2.15 has wheels for CPython 3.9 to 3.11 only: the base interpreter is
# $OLD_TF_BASE_PYTHON if set, else the first of python3.11, python3.10, python3.9, python3 in that range.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=.venv-tf215
# numpy is left to pip: tensorflow-cpu 2.15.1 requires numpy<2, which is the point of this env.
PIN="tensorflow-cpu==2.15.1"
STAMP="$VENV/.envprint-stamp"
want="$PIN $(sha256sum pyproject.toml | cut -d' ' -f1)"

in_range() { "$1" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 11))' 2>/dev/null; }

if [ -x "$VENV/bin/python" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want" ] \
  && "$VENV/bin/python" -c 'import importlib.metadata as m; m.version("tensorflow-cpu"); m.version("envprint"); m.version("pytest")' 2>/dev/null; then
  echo "$PWD/$VENV/bin/python"
  exit 0
fi

base=""
for candidate in ${OLD_TF_BASE_PYTHON:-python3.11 python3.10 python3.9 python3}; do
  if command -v "$candidate" >/dev/null 2>&1 && in_range "$candidate"; then
    base=$candidate
    break
  fi
done
if [ -z "$base" ]; then
  echo "old_tf_env.sh: TensorFlow 2.15 needs CPython 3.9-3.11 and none is on PATH;" \
    "set OLD_TF_BASE_PYTHON=/path/to/python3.11, or ENVPRINT_SKIP_OLD_TF=1 to skip the cross-version tests" >&2
  exit 2
fi

start=$SECONDS
echo "== creating $VENV ($PIN, with $("$base" -V 2>&1)); once per machine, a few minutes" >&2
rm -rf "$VENV"
"$base" -m venv "$VENV"
# The venv's own .gitignore: it must never be committed, whatever the repo's ignores say.
echo "*" >"$VENV/.gitignore"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$PIN" -e ".[test]" 2>&1 \
  | { grep -v "^WARNING: Location" || true; } >&2
# pip resolved numpy for TensorFlow 2.15; say so if it did not, before a test trips over it.
"$VENV/bin/python" -c 'import numpy, sys; sys.exit(f"numpy {numpy.__version__} in the TF 2.15 env; it needs numpy<2" if int(numpy.__version__.split(".")[0]) >= 2 else 0)'
echo "$want" >"$STAMP"
echo "== $VENV ready in $((SECONDS - start)) s" >&2
echo "$PWD/$VENV/bin/python"
