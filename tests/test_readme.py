"""The README is the user's door: its Python examples run as written, on a real saved model."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_python_examples_run(mlp, keras, tmp_path, monkeypatch, caplog):
    blocks = python_blocks()
    assert len(blocks) == 3, "the README shows a serving example, a library example and logging a report"
    monkeypatch.chdir(tmp_path)
    shutil.copy2(mlp["keras"], tmp_path / "model.keras")
    np.savez(tmp_path / "samples.npz", features=np.random.default_rng(1).standard_normal((4, 4)).astype("float32"))
    library, serving = blocks[1], blocks[0]
    exec(compile(library, "README.md (library)", "exec"), {})  # saves the record, then verifies
    model = keras.models.load_model("model.keras", compile=False)
    exec(compile(serving, "README.md (serving)", "exec"), {"model": model})
    with caplog.at_level("INFO", logger="envprint"):
        exec(compile(blocks[2], "README.md (logging)", "exec"), {"model": model})
    logged = caplog.records[-1].getMessage()
    assert logged.startswith("envprint verify: PASSED (bit-identical)\n  model:       <in-memory")
