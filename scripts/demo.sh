#!/usr/bin/env bash
# envprint's main job, end to end on this machine: creates ./.venv, installs envprint[tensorflow-cpu],
# captures this host's fingerprint twice (the second time with fewer TensorFlow threads and oneDNN
# off, as a deployment host might be), shows one and explains what differs.
set -euo pipefail
source "$(dirname "$0")/_venv.sh"
out=${DEMO_DIR:-demo-output}
mkdir -p "$out"
export TF_CPP_MIN_LOG_LEVEL=3

echo "== envprint show  (this host, for people)"
envprint show

echo
echo "== envprint show --json > $out/training-host.json"
envprint show --json > "$out/training-host.json"
echo "== TF_NUM_INTRAOP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=0 envprint show --json > $out/deploy-host.json"
TF_NUM_INTRAOP_THREADS=1 TF_ENABLE_ONEDNN_OPTS=0 envprint show --json > "$out/deploy-host.json"

echo
echo "== envprint diff $out/training-host.json $out/deploy-host.json"
status=0
envprint diff "$out/training-host.json" "$out/deploy-host.json" || status=$?
echo
echo "envprint diff exited $status (0 same, 1 different, 2+ could not compare)"
[ "$status" -le 1 ]
