"""The deployment recipes: Kubernetes manifests and the GitHub Actions workflow, validated offline and run.

Manifests are validated against the Kubernetes OpenAPI schema that kubernetes-validate ships (no
cluster, no network: the test refuses every connection); the workflow against the GitHub
workflow schema vendored in check-jsonschema. The commands they hold are run on a real model.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from envhelpers import invoke

from envprint.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "examples" / "kubernetes"
WORKFLOW = ROOT / "docs" / "examples" / "envprint-verify.yml"
MANIFESTS = sorted(K8S.glob("*.yaml"))


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def containers(doc: dict) -> dict[str, dict]:
    spec = doc["spec"]["template"]["spec"]
    return {c["name"]: c for c in spec.get("initContainers", []) + spec["containers"]}


@pytest.fixture
def offline(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access refused by the test: validation must work offline")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def recorded(mlp_recorded) -> Path:
    return mlp_recorded


@pytest.fixture(scope="module")
def drifted(mlp_recorded, mlp_retrained, tmp_path_factory) -> Path:
    """Another model beside a copy of the first one's record."""
    folder = tmp_path_factory.mktemp("drifted")
    shutil.copy2(mlp_retrained, folder / "model.keras")
    shutil.copytree(mlp_recorded.with_name("model.keras.envprint"), folder / "model.keras.envprint")
    return folder / "model.keras"


def test_there_are_the_four_kubernetes_recipes():
    assert [p.name for p in MANIFESTS] == [
        "endpoint-verify-job.yaml",
        "init-container-verify.yaml",
        "node-problem-detector.yaml",
        "readiness-in-process.yaml",
    ]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifests_validate_against_the_kubernetes_schema_offline(path, offline):
    version = kubernetes_validate.latest_version()
    for doc in documents(path):
        kubernetes_validate.validate(doc, version, strict=True)  # raises ValidationError on any problem


def test_the_validator_catches_a_misspelled_field(offline):
    (doc,) = documents(K8S / "init-container-verify.yaml")
    doc["spec"]["template"]["spec"]["initContainer"] = doc["spec"]["template"]["spec"].pop("initContainers")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_the_init_container_runs_envprint_verify_on_the_server_s_image_and_gates_on_its_exit_code(recorded, drifted):
    (doc,) = documents(K8S / "init-container-verify.yaml")
    c = containers(doc)
    gate = c["envprint-verify"]
    assert gate["image"] == c["server"]["image"]  # the TensorFlow the server runs is the one verified
    assert gate["command"][:2] == ["envprint", "verify"]
    assert gate["securityContext"]["readOnlyRootFilesystem"] is True  # verify writes nothing
    args = gate["command"][1:-1]
    assert invoke(*args, recorded).exit_code == ExitCode.OK
    assert invoke(*args, drifted).exit_code == ExitCode.DIFFERENT


def test_the_readiness_recipe_probes_the_verified_endpoint_and_keeps_liveness_apart():
    (doc,) = documents(K8S / "readiness-in-process.yaml")
    server = containers(doc)["server"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert server["startupProbe"]["httpGet"]["path"] == "/ready"
    assert server["livenessProbe"]["httpGet"]["path"] != "/ready"  # a mismatch must not restart the pod
    assert {e["name"] for e in server["env"]} == {"ENVPRINT_FINGERPRINT"}


@pytest.mark.subprocess
def test_node_problem_detector_check_maps_envprint_exit_codes_to_ok_nonok(recorded, drifted, tmp_path):
    (config_map,) = documents(K8S / "node-problem-detector.yaml")
    monitor = json.loads(config_map["data"]["envprint-plugin-monitor.json"])
    (rule,) = monitor["rules"]
    assert monitor["plugin"] == "custom"
    assert rule["path"] == "/config/envprint/envprint-check.sh"
    assert rule["condition"] == monitor["conditions"][0]["type"] == "ModelNumericsDrift"

    script = tmp_path / "envprint-check.sh"
    script.write_text(config_map["data"]["envprint-check.sh"])
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    results = {}
    for name, model in (("ok", recorded), ("drift", drifted), ("unknown", tmp_path / "missing.keras")):
        done = subprocess.run(
            ["sh", str(script)], env={**env, "ENVPRINT_MODEL": str(model)}, capture_output=True, text=True, timeout=300
        )
        results[name] = (done.returncode, done.stdout.splitlines())
    # NPD: 0 OK, 1 NonOK, anything else Unknown; the one line printed becomes the condition's message.
    assert results["ok"] == (0, ["envprint verify: PASSED (bit-identical)"])
    assert results["drift"] == (
        1,
        [
            "envprint verify: MISMATCH: the model's weights differ from the fingerprinted model's: "
            "this is not the model that was saved"
        ],
    )
    code, lines = results["unknown"]
    assert code == ExitCode.MODEL and len(lines) == 1 and lines[0].startswith("envprint: error: ")


def test_the_github_actions_workflow_validates_and_runs_verify_with_junit_xml(recorded, tmp_path, monkeypatch):
    done = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["verify"]["steps"]
    (verify,) = [s for s in steps if s.get("run", "").startswith("envprint verify")]
    argv = verify["run"].split()
    junit = argv[argv.index("--junit-xml") + 1]
    reporter = [s for s in steps if s.get("uses", "").startswith("mikepenz/action-junit-report")]
    assert reporter[0]["with"]["report_paths"] == junit and reporter[0]["if"] == "always()"
    # The step's own command line, with a real model in place of the repository's.
    monkeypatch.chdir(tmp_path)
    r = invoke(argv[1], recorded, *argv[3:])
    assert r.exit_code == ExitCode.OK, r.output + r.stderr
    assert (
        (tmp_path / junit).read_text().startswith('<?xml version="1.0" encoding="utf-8"?>\n<testsuites name="envprint"')
    )
