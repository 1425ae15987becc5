#!/usr/bin/env bash
# Run envprint's tests on a fresh machine: creates ./.venv, installs envprint[tensorflow-cpu,test],
# runs the checks that keep ARCHITECTURE.md true (ruff, ruff format --check, the import contracts,
# mypy, module and function sizes), checks the documentation (its generated reference pages current,
# mkdocs build --strict), then runs pytest in three passes, one per Keras that envprint supports:
#   1. the whole suite on the newest TensorFlow (Keras 3), including tests/test_cross_version.py,
#      which verifies models saved here under TensorFlow 2.15;
#   2. the Keras-sensitive part of the suite (FLAVOR_TESTS below) under tf_keras
#      (TF_USE_LEGACY_KERAS=1, with the tf-keras release that matches the installed TensorFlow);
#   3. the same part under TensorFlow 2.15 (Keras 2, NumPy 1.x), in ./.venv-tf215
#      (scripts/old_tf_env.sh makes it once, about two minutes).
# The KServe endpoint tests run KServe's ModelServer from ./.venv-kserve (scripts/kserve_env.sh).
# Tests of what only Keras 3 does are marked keras3 and deselected in passes 2 and 3.
#
# Extra arguments go to pass 1 alone (e.g. scripts/test.sh -k diff runs only that). Outside CI,
# ENVPRINT_SKIP_OLD_TF=1 skips TensorFlow 2.15 (the cross-version tests and pass 3), and an
# ENVPRINT_OLD_TF_PYTHON already set is used as it is; ENVPRINT_SKIP_KSERVE=1 and
# ENVPRINT_KSERVE_PYTHON do the same for the KServe server's virtualenv. With CI set (.ci/run sets
# it), nothing may skip: a skip whose reason is not in tests/skip_allowlist.txt fails the pass
# (tests/conftest.py).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"

# The part of the suite whose code paths differ between Keras 3, tf_keras and Keras 2: loading
# every format, capture's Keras facts, save/verify end to end, the record's integrity, digests
# of each format, probes from each Keras's input signature.
FLAVOR_TESTS=(tests/test_loading.py tests/test_capture.py tests/test_save_verify.py
  tests/test_integrity.py tests/test_digests.py tests/test_probes.py)

in_ci() { case "$(echo "${CI:-}" | tr '[:upper:]' '[:lower:]')" in 1 | true | yes | on) return 0 ;; *) return 1 ;; esac; }

echo "== ruff"
ruff check envprint tests scripts
ruff format --check envprint tests scripts
echo "== import contracts (lint-imports; [tool.importlinter] in pyproject.toml)"
lint-imports
echo "== types (mypy envprint; [tool.mypy] in pyproject.toml)"
mypy envprint
echo "== size (scripts/check_size.py: 400 lines a module, 60 a function, or a reason)"
python scripts/check_size.py
echo "== docs (scripts/gen_reference.py --check; mkdocs build --strict: a broken link or anchor fails)"
python scripts/gen_reference.py --check
site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 mkdocs build --strict --site-dir "$site"
rm -rf "$site"
if [ "${ENVPRINT_SKIP_OLD_TF:-}" = 1 ]; then
  if in_ci; then
    echo "test.sh: ENVPRINT_SKIP_OLD_TF=1 is not allowed in CI: the TensorFlow 2.15 tests must run there" >&2
    exit 2
  fi
  echo "== TensorFlow 2.15 env: skipped (ENVPRINT_SKIP_OLD_TF=1); tests/test_cross_version.py will skip"
  unset ENVPRINT_OLD_TF_PYTHON
elif [ -z "${ENVPRINT_OLD_TF_PYTHON:-}" ]; then
  echo "== TensorFlow 2.15 env (for tests/test_cross_version.py and the Keras 2 pass)"
  ENVPRINT_OLD_TF_PYTHON=$(bash scripts/old_tf_env.sh)
  export ENVPRINT_OLD_TF_PYTHON
fi
# tests/test_endpoint_kserve.py serves models with KServe's ModelServer, whose protobuf and pandas pins
# differ from .venv's: ./.venv-kserve (scripts/kserve_env.sh makes it once, a few minutes).
if [ "${ENVPRINT_SKIP_KSERVE:-}" = 1 ]; then
  if in_ci; then
    echo "test.sh: ENVPRINT_SKIP_KSERVE=1 is not allowed in CI: the KServe endpoint tests must run there" >&2
    exit 2
  fi
  echo "== KServe env: skipped (ENVPRINT_SKIP_KSERVE=1); tests/test_endpoint_kserve.py's server tests will skip"
elif [ -z "${ENVPRINT_KSERVE_PYTHON:-}" ]; then
  echo "== KServe env (for tests/test_endpoint_kserve.py)"
  ENVPRINT_KSERVE_PYTHON=$(bash scripts/kserve_env.sh)
  export ENVPRINT_KSERVE_PYTHON
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

echo "== pytest, Keras 3"
ENVPRINT_EXPECT_KERAS=keras3 python -m pytest "$@"
if [ $# -gt 0 ]; then
  exit 0 # a chosen subset: the other passes run the fixed part of the suite only on a full run
fi

# tf-keras is pinned to TensorFlow's own minor release (tf-keras 2.21.x for TensorFlow 2.21.x)
# and installed without dependencies: its requirement names the 'tensorflow' distribution, which
# would pull the CUDA build beside tensorflow-cpu.
tf_minor=$(python -c 'import importlib.metadata as m, sys
for d in ("tensorflow-cpu", "tensorflow"):
    try:
        v = m.version(d).split(".")
        print(f"{v[0]}.{v[1]}"); sys.exit()
    except m.PackageNotFoundError:
        pass
sys.exit("test.sh: no TensorFlow in .venv")')
if ! python -c "import importlib.metadata as m, sys; sys.exit(not m.version('tf-keras').startswith('$tf_minor.'))" 2>/dev/null; then
  echo "== installing tf-keras ~= $tf_minor.0 (for the tf_keras pass)"
  python -m pip install --quiet --disable-pip-version-check --no-deps "tf-keras~=$tf_minor.0" 2>&1 \
    | { grep -v "^WARNING: Location" || true; }
fi
echo "== pytest, tf_keras (TF_USE_LEGACY_KERAS=1): ${FLAVOR_TESTS[*]}"
TF_USE_LEGACY_KERAS=1 ENVPRINT_EXPECT_KERAS=tf_keras python -m pytest -m "not keras3" "${FLAVOR_TESTS[@]}"

if [ -n "${ENVPRINT_OLD_TF_PYTHON:-}" ]; then
  echo "== pytest, TensorFlow 2.15 (Keras 2): ${FLAVOR_TESTS[*]}"
  ENVPRINT_EXPECT_KERAS=keras2 "$ENVPRINT_OLD_TF_PYTHON" -m pytest -m "not keras3" "${FLAVOR_TESTS[@]}"
fi
