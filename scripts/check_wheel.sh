#!/usr/bin/env bash
# The package a user installs, checked as a user gets it: build the sdist and the wheel
# (`python -m build`), check their metadata (`twine check`), install the wheel (not this checkout)
# into a clean virtualenv with the tensorflow-cpu extra, and run the README's quick start from it
# in a directory outside the checkout, so that nothing is imported from the source tree.
#
#   bash scripts/check_wheel.sh          # uses ./.venv for build and twine (scripts/test.sh makes it)
#
# Leaves dist/ (the built files) and removes its temporary virtualenv and work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}

echo "== build: sdist and wheel"
rm -rf dist
"$PY" -m build --sdist --wheel --outdir dist . > /tmp/envprint-build.log 2>&1 || { tail -30 /tmp/envprint-build.log; exit 1; }
ls dist
"$PY" -m twine check --strict dist/*

wheel=$(ls dist/envprint-*.whl)
version=$("$PY" -c 'import sys, zipfile; n = sys.argv[1]; print(n.split("-")[1])' "$wheel")
# The wheel carries the typing marker, so type checkers read envprint's annotations.
"$PY" - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
missing = [n for n in ("envprint/py.typed", "envprint/cli/app.py") if n not in names]
if missing:
    sys.exit(f"check_wheel: {', '.join(missing)} missing from {sys.argv[1]}")
leaked = [n for n in names if n.startswith(("tests/", "scripts/"))]
if leaked:
    sys.exit(f"check_wheel: the wheel ships {leaked[:3]}")
EOF

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== clean virtualenv: $wheel[tensorflow-cpu]"
"${PYTHON:-python3}" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$(pwd)/$wheel[tensorflow-cpu]" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }

echo "== quick start from the installed wheel (in $work)"
cd "$work"
export PATH="$work/venv/bin:$PATH" TF_CPP_MIN_LOG_LEVEL=2
test "$(envprint --version)" = "envprint $version"
python - <<'EOF'
import envprint, pathlib, sys
assert "site-packages" in envprint.__file__, envprint.__file__  # the wheel, not the checkout
import keras
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(3)])
model.save("model.keras")
EOF
envprint save model.keras --seed 1234
envprint verify model.keras
python - <<'EOF'
# serving start-up, on the model the server already loaded (the README's library example)
import envprint, keras
model = keras.saving.load_model("model.keras")
report = envprint.verify(model, fingerprint="model.keras.envprint")
report.raise_for_status()
print("library verify:", report.verdict)
EOF
echo "== wheel $wheel: built, checked, installed and run"
