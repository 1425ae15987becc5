#!/usr/bin/env bash
# envprint's main job, end to end on this machine. Creates ./.venv, installs envprint[tensorflow-cpu],
# trains a small image classifier, records it with `envprint save`, then verifies it as three
# deployment hosts would see it: the same host, a host with other TensorFlow settings, and a
# host that was shipped the wrong model. Output goes to ./demo-output (or $DEMO_DIR).
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
out=${DEMO_DIR:-demo-output}
rm -rf "$out"
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=3
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect() {  # expect CODE COMMAND...: run it, show its exit code, fail the demo if it is not CODE
  local want=$1 status=0
  shift
  "$@" 2> >(grep -v -E '^(WARNING: All log messages|I0000|W0000)' >&2) || status=$?
  echo "(exit $status)"
  [ "$status" -eq "$want" ] || { echo "demo: expected exit $want from: $*" >&2; exit 1; }
}

step "train a small classifier (MobileNetV2, 64x64, 5 classes) and save it as .keras and SavedModel"
python scripts/demo_model.py "$out" 2> /dev/null

step "training host: envprint save $out/classifier.keras --probes $out/samples.npy --seed 7"
expect 0 envprint save "$out/classifier.keras" --probes "$out/samples.npy" --seed 7
step "training host: envprint save $out/classifier_export   (the record goes inside, under assets.extra/envprint/)"
expect 0 envprint save "$out/classifier_export" --seed 7

step "deployment host, same environment: envprint verify $out/classifier.keras"
expect 0 envprint verify "$out/classifier.keras"

# The other host flips oneDNN from what TensorFlow does here: on by default on a CPU with AVX-512
# VNNI/BF16 or AMX, off on an AVX2-only one (this host's own fact, as envprint records it).
envprint show --json > "$out/training-host.json" 2> /dev/null
other=$(python -c 'import json, sys; print(0 if json.load(open(sys.argv[1]))["tensorflow"]["onednn"]["enabled"] else 1)' \
  "$out/training-host.json")
other_words=$([ "$other" = 0 ] && echo off || echo on)

step "deployment host with oneDNN $other_words and one intra-op thread: envprint verify $out/classifier_export"
TF_ENABLE_ONEDNN_OPTS=$other TF_NUM_INTRAOP_THREADS=1 expect 0 envprint verify "$out/classifier_export"

step "the same host as a picture: envprint verify $out/classifier.keras --exact --html $out/report.html (docs/report.png)"
TF_ENABLE_ONEDNN_OPTS=$other TF_NUM_INTRAOP_THREADS=1 expect 1 envprint verify "$out/classifier.keras" --exact --html "$out/report.html"

step "deployment host shipped a retrained model under the same name: envprint verify (exit 1 blocks the deploy)"
mkdir -p "$out/deploy"
cp "$out/classifier_retrained.keras" "$out/deploy/classifier.keras"
cp -r "$out/classifier.keras.envprint" "$out/deploy/"
expect 1 envprint verify "$out/deploy/classifier.keras"

step "the fingerprints alone: envprint diff (training host vs a host with other settings)"
TF_NUM_INTRAOP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=$other envprint show --json > "$out/deploy-host.json" 2> /dev/null
expect 1 envprint diff "$out/training-host.json" "$out/deploy-host.json"

step "done: exit codes 0 = passed, 1 = mismatch / differences, 2+ = could not check"
