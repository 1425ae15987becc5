# Sourced by demo.sh and test.sh: make ./.venv (once) and install envprint with TensorFlow (CPU), its
# optional extras (html: matplotlib; mlflow: mlflow-skinny; docs: mkdocs, its Material theme and
# mkdocstrings; jax, openvino: the Keras backends tests/test_backends.py and tests/test_corpus.py
# verify on) and the test tools into it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "envprint needs Python >= 3.10; set PYTHON=/path/to/python3.10+ and rerun" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[tensorflow-cpu,test,html,mlflow,docs,jax,openvino]" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
# The TF Serving tests parse the warm-up file with the official protos of tensorflow-serving-api, whose
# wheel requires the `tensorflow` distribution: installed without dependencies (and at the version of the
# TensorFlow installed above), so that it brings no second TensorFlow beside tensorflow-cpu.
tf_minor=$(.venv/bin/python -c 'import importlib.metadata as m; print(".".join(m.version("tensorflow-cpu").split(".")[:2]))')
.venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps "tensorflow-serving-api==${tf_minor}.*" 2>&1 \
  | { grep -v "^WARNING: Location" || true; }
export PATH="$PWD/.venv/bin:$PATH"
