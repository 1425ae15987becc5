"""The format registry (envprint.formats): the one list every other part derives its formats from."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from envprint import formats, models

PACKAGE = Path(formats.__file__).resolve().parent


def test_the_data_models_format_literal_is_the_registrys_ids() -> None:
    # models imports nothing of envprint but errors, so it spells the ids out: this keeps them equal.
    assert typing.get_args(models.ModelFormat) == formats.IDS


def _literal_lists(tree: ast.AST) -> list[tuple[int, list[str]]]:
    """(line, ids) of each tuple, list, set or dict literal naming two or more format ids."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            items = node.elts
        elif isinstance(node, ast.Dict):
            items = [k for k in node.keys if k is not None]
        else:
            continue
        ids = [e.value for e in items if isinstance(e, ast.Constant) and e.value in formats.IDS]
        if len(ids) >= 2:
            found.append((node.lineno, ids))
    return found


def test_no_module_but_the_registry_lists_the_formats() -> None:
    """A second list of formats drifts from the registry: a new format would be missed there."""
    allowed = {PACKAGE / "formats.py"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path in allowed:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # models.ModelFormat: the one Literal, checked equal above
            if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "ModelFormat" for t in node.targets):
                node.value = ast.Constant(None)
        offenders += [f"{path.relative_to(PACKAGE.parent)}:{line}: {ids}" for line, ids in _literal_lists(tree)]
    assert offenders == [], "list the formats in envprint/formats.py only:\n" + "\n".join(offenders)


def test_the_scan_finds_a_hard_coded_list() -> None:
    assert _literal_lists(ast.parse('if fmt in ("keras", "h5"): pass')) == [(1, ["keras", "h5"])]
    assert _literal_lists(ast.parse('LABEL = {"savedmodel": "a", "tflite": "b"}')) == [(1, ["savedmodel", "tflite"])]


def test_importing_the_registry_costs_nothing() -> None:
    code = "import sys, envprint.formats; print(sorted(m for m in ('numpy', 'pydantic', 'tensorflow', 'keras') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("fmt", formats.FORMATS, ids=lambda f: f.id)
def test_each_entry_names_a_loader_and_a_digest_scheme_that_exist(fmt: formats.Format) -> None:
    from envprint._tf import identity

    assert callable(importlib.import_module(fmt.loader).load)
    assert fmt.digest_scheme in (identity.WEIGHTS_SCHEME, identity.WEIGHTS_SCHEME_TFLITE)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"PK\x03\x04\x14\x00\x00\x00", "keras"),
        (b"\x89HDF\r\n\x1a\n", "h5"),
        (b"\x1c\x00\x00\x00TFL3\x00\x00", "tflite"),
        (b"\x93NUMPY\x01\x00v\x00", None),
        (b"{}", None),
    ],
)
def test_a_file_is_recognised_by_its_first_bytes(head: bytes, expected: str | None) -> None:
    found = formats.sniff(head)
    assert (found.id if found else None) == expected


def test_a_directory_with_saved_model_pb_is_a_savedmodel(tmp_path: Path) -> None:
    assert formats.by_name(tmp_path) is None
    (tmp_path / "saved_model.pb").write_bytes(b"")
    assert formats.by_name(tmp_path).id == formats.by_content(tmp_path).id == "savedmodel"


def test_help_and_errors_name_every_format() -> None:
    assert formats.choices() == "keras, h5, savedmodel or tflite"
    assert formats.accepted() == (
        "a .keras file, an .h5/.hdf5 file, a .tflite file, or a SavedModel directory (with saved_model.pb)"
    )
