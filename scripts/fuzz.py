#!/usr/bin/env python
"""Fuzz envprint's parsers of hostile input: every case must end in an EnvprintError or succeed.

Targets, each fed mutations of a real seed (a synthetic model record built without TensorFlow):

- ``fingerprint``: fingerprint.json bytes -> ``store.parse_fingerprint_bytes``
- ``fingerprint-file``: the same bytes from a file -> ``store.read_fingerprint``
- ``signature``: signature.json bytes (and the fingerprint they sign) -> ``signing.check``
- ``arrays``: reference.npz bytes -> ``npz.load_arrays``
- ``probes``: probes.npz bytes -> ``probes.load_probes`` (checked against the model's inputs)
- ``sidecar``: a whole sidecar, one file mutated -> ``record_read.read_record`` + ``sidecar_arrays``
  (what ``envprint verify`` reads before it loads the model)

Mutations: bit flips, truncation, byte insertions and deletions, splices of the seed into
itself; for JSON also edits of decoded values, types and keys, huge numbers and deep nesting;
for .npz also edits of the .npy headers (shape, dtype, order) and of the zip headers
(compression method, flags, names). Any other exception, or a case slower than ``--case-timeout``,
is a failure: it is printed with the bytes' sha256 and saved under ``--crashes`` for replay.

    python scripts/fuzz.py --seconds 60 [--seed 0] [--target fingerprint] [--crashes bench-results/fuzz-crashes/]

Exit status 0 when every case ended well, 1 otherwise. ``tests/test_fuzz.py`` runs a short,
seeded pass of the same mutators in CI.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import io
import json
import random
import signal
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from envprint.check import record_read
from envprint.errors import EnvprintError
from envprint.record import npz, probes, sidecar, signing, store

KEY = b"fuzzing-key-0123456789abcdef0123"


# --------------------------------------------------------------------------- the seed record


@dataclass
class Seed:
    """One valid sidecar, as bytes: the starting point of every mutation."""

    fingerprint: bytes
    signature: bytes
    probes: bytes
    reference: bytes
    inputs: list[probes.TensorSpecInfo]
    host: bytes = b""


def build_seed(directory: Path) -> Seed:
    """A model record like ``envprint save`` writes, built without TensorFlow (capture(tensorflow=False))."""
    from envprint.check.capture import capture
    from envprint.models import ArrayFile, ModelIdentity, ProbeRecipe, SelfCheck, TensorSpec, Tolerance
    from envprint.record import digests

    def _array_file(directory: Path, name: str, arrays: dict[str, np.ndarray]) -> ArrayFile:
        npz.save_arrays(directory / name, arrays)
        digest = digests.sha256_file(directory / name)
        return ArrayFile(file=name, sha256=digest, arrays={k: list(v.shape) for k, v in arrays.items()})

    rng = np.random.default_rng(0)
    inputs = {"features": rng.standard_normal((8, 4)).astype(np.float32)}
    reference = {"logits": rng.standard_normal((8, 3)).astype(np.float32)}
    directory.mkdir(parents=True, exist_ok=True)
    fp = capture(tensorflow=False, seed=7).model_copy(
        update={
            "model": ModelIdentity(
                format="keras",
                name="model.keras",
                files={".": "0" * 64},
                weights_digest="1" * 64,
                weights_digest_scheme="named-v1",
                inputs=[TensorSpec(name="features", shape=[None, 4], dtype="float32")],
                outputs=[TensorSpec(name="logits", shape=[None, 3], dtype="float32")],
                parameter_count=67,
                layer_classes=["InputLayer", "Dense", "Dense"],
            ),
            "probes": ProbeRecipe(
                source="generated",
                num_probes=8,
                seed=0,
                distribution="standard_normal",
                inputs=[TensorSpec(name="features", shape=[8, 4], dtype="float32")],
            ),  # fmt: skip
            "probe_arrays": _array_file(directory, sidecar.PROBES_FILE, inputs),
            "reference_arrays": _array_file(directory, sidecar.REFERENCE_FILE, reference),
            "self_check": SelfCheck(
                repeat_max_abs={"logits": 0.0}, batch1_max_abs={"logits": float("inf")}, deterministic=True
            ),
            "tolerance": Tolerance(),
        }
    )
    text = store.canonical_json(type(fp).model_validate(fp.model_dump())).encode()
    host = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "handmade_gpu_host_a100.json"
    return Seed(
        fingerprint=text,
        signature=signing.sign(text, KEY).encode(),
        probes=(directory / sidecar.PROBES_FILE).read_bytes(),
        reference=(directory / sidecar.REFERENCE_FILE).read_bytes(),
        inputs=[probes.TensorSpecInfo("features", (None, 4), "float32")],
        host=host.read_bytes() if host.exists() else b"",
    )


# --------------------------------------------------------------------------- byte mutators


def flip_bits(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 4, 8, 32))):
        i = rng.randrange(len(out))
        out[i] ^= 1 << rng.randrange(8)
    return bytes(out)


def truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)] if rng.random() < 0.8 else data[rng.randrange(len(data) + 1) :]


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    i = rng.randrange(len(data) + 1)
    junk = rng.choice(
        (
            bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16))),
            b"\x00" * rng.randrange(1, 64),
            b"\xff\xfe",
            b"\xc3\x28",  # invalid UTF-8
            b'"\\ud800"',  # a lone surrogate, escaped
            b"\n\r\t ",
        )
    )
    return data[:i] + junk + data[i:]


def delete_bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    i = rng.randrange(len(data))
    return data[:i] + data[i + rng.randrange(1, 64) :]


def splice(rng: random.Random, data: bytes) -> bytes:
    if len(data) < 2:
        return data
    a, b = sorted(rng.randrange(len(data)) for _ in range(2))
    at = rng.randrange(len(data))
    return data[:at] + data[a:b] + data[at:]


BYTE_MUTATORS: tuple[Callable[[random.Random, bytes], bytes], ...] = (
    flip_bits,
    truncate,
    insert_bytes,
    delete_bytes,
    splice,
)


# --------------------------------------------------------------------------- JSON mutators


def hostile_value(rng: random.Random, depth: int = 0) -> object:
    choices = [
        None, True, False, 0, -1, 2**63, -(2**64) - 1, 10**400, 1.5, -0.0, float("inf"), float("nan"), 1e308,
        "", "x" * rng.choice((1, 100, 100_000)), "line\nbreak", "\x00\x1b[31m", "é\u202e\U0001f600", "2026-13-45",
        "1" * 5000, [], {}, ["a", 1, None], {"schema_version": 99},
    ]  # fmt: skip
    value = rng.choice(choices)
    if depth < 3 and rng.random() < 0.15:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    if depth < 3 and rng.random() < 0.1:
        return {str(hostile_value(rng, depth + 1))[:20]: hostile_value(rng, depth + 1)}
    return value


def _containers(node: object, path: tuple = ()) -> Iterator[tuple[tuple, object]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _containers(v, (*path, k))
    elif isinstance(node, list):
        yield path, node
        for i, v in enumerate(node):
            yield from _containers(v, (*path, i))


def edit_json(rng: random.Random, data: bytes) -> bytes:
    """Decode, change one value, type or key somewhere, and encode again (like a hand edit)."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return flip_bits(rng, data)
    containers = list(_containers(doc))
    if not containers:
        return json.dumps(hostile_value(rng)).encode()
    for _ in range(rng.choice((1, 1, 2, 3))):
        _, node = rng.choice(containers)
        if isinstance(node, dict) and node:
            key = rng.choice(list(node))
            action = rng.randrange(4)
            if action == 0:
                node[key] = hostile_value(rng)
            elif action == 1:
                del node[key]
            elif action == 2:
                node[str(hostile_value(rng))[:30]] = hostile_value(rng)
            else:
                node[key + rng.choice(("_", "\n", "\x00", "é"))] = node.pop(key)
        elif isinstance(node, list) and node:
            i = rng.randrange(len(node))
            if rng.random() < 0.5:
                node[i] = hostile_value(rng)
            else:
                del node[i]
        elif isinstance(node, list):
            node.append(hostile_value(rng))
    try:
        return json.dumps(doc, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return data


def extreme_json(rng: random.Random, data: bytes) -> bytes:
    """Documents that stress the decoder itself: deep nesting, huge numbers, duplicate keys, odd wrappers."""
    depth = rng.choice((100, 1000, 100_000))
    return rng.choice(
        (
            b"[" * depth + b"]" * depth,
            b'{"a":' * depth + b"1" + b"}" * depth,
            b"[" * depth,
            b'{"schema_version": ' + b"9" * rng.choice((20, 5000, 100_000)) + b"}",
            b'{"schema_version": 1e999}',
            b'{"schema_version": -1}',
            b'{"schema_version": 1, "schema_version": 2}',
            b"\xef\xbb\xbf" + data,  # a BOM
            data.decode("utf-8", "replace").encode("utf-16"),
            b"NaN",
            b"",
            b"null",
            data + data,
            data.replace(b'"schema_version": 1', b'"schema_version": true'),
            data.replace(b'"schema_version": 1', b'"schema_version": 0'),
        )
    )


JSON_MUTATORS = (*BYTE_MUTATORS, edit_json, edit_json, edit_json, extreme_json)


# --------------------------------------------------------------------------- .npz mutators


def _members(data: bytes) -> list[tuple[str, bytes]] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return [(name, zf.read(name)) for name in zf.namelist()]
    except Exception:  # noqa: BLE001 - an already-mutated archive: fall back to byte mutations
        return None


def _zip(members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", compression=compression) as zf:
        warnings.simplefilter("ignore")  # duplicate member names are one of the mutations
        for name, payload in members:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), payload, compress_type=compression)
    return buf.getvalue()


def edit_npy_header(rng: random.Random, data: bytes) -> bytes:
    """Rewrite one member's .npy header dict: shape, dtype or order (stored uncompressed, so find and replace)."""
    members = _members(data)
    if not members:
        return flip_bits(rng, data)
    i = rng.randrange(len(members))
    name, payload = members[i]
    start, end = payload.find(b"{"), payload.find(b"}")
    if start < 0 or end < 0:
        return flip_bits(rng, data)
    header = rng.choice(
        (
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 3000000000), }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }",
            b"{'descr': '|O', 'fortran_order': False, 'shape': (8, 3), }",
            b"{'descr': '<f8', 'fortran_order': False, 'shape': (8, 3), }",
            b"{'descr': '<U4', 'fortran_order': True, 'shape': (8,), }",
            b"{'descr': 'nonsense', 'fortran_order': False, 'shape': (8, 3), }",
            b"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (8,), }",
            b"{'descr': '<f4', 'fortran_order': 'maybe', 'shape': (8, 3), }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': 'eight', }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (8, 3), 'extra': 1}",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': (8,3" + b",3" * 40 + b"), }",
            b"{'descr': '<f4', 'fortran_order': False, 'shape': __import__('os').getpid(), }",
            b"{" + b"(" * 200 + b"}",
        )
    )
    new = payload[:start] + header + payload[end + 1 :]
    members[i] = (name, new)
    return _zip(members)


def edit_zip(rng: random.Random, data: bytes) -> bytes:
    """Rebuild the archive with a change zipfile itself must cope with."""
    members = _members(data)
    if not members:
        return truncate(rng, data)
    action = rng.randrange(7)
    if action == 0:  # compressed, then bit-flipped: a corrupt deflate stream
        return flip_bits(rng, _zip(members, zipfile.ZIP_DEFLATED))
    if action == 1:  # a compression method zipfile does not know (99 = AES)
        raw = bytearray(_zip(members))
        for sig in (b"PK\x03\x04", b"PK\x01\x02"):
            at = raw.find(sig)
            offset = 8 if sig == b"PK\x03\x04" else 10
            if at >= 0:
                raw[at + offset : at + offset + 2] = (99).to_bytes(2, "little")
        return bytes(raw)
    if action == 2:  # the "encrypted" flag
        raw = bytearray(_zip(members))
        for sig, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
            at = raw.find(sig)
            if at >= 0:
                raw[at + offset] |= 1
        return bytes(raw)
    if action == 3:  # renamed, duplicated or dropped members
        name, payload = rng.choice(members)
        new_name = rng.choice(("", "../evil.npy", "x.npy", name, "a" * 300 + ".npy", "é\n.npy", "logits"))
        return _zip([*members, (new_name, payload)] if rng.random() < 0.5 else [(new_name, payload)])
    if action == 4:
        return _zip([])
    if action == 5:  # a member that is a pickle
        return _zip([*members, ("obj.npy", b"\x80\x04\x95" + bytes(20))])
    return _zip([(n, flip_bits(rng, p)) for n, p in members])


NPZ_MUTATORS = (*BYTE_MUTATORS, edit_npy_header, edit_npy_header, edit_zip, edit_zip)


def mutate(rng: random.Random, data: bytes, mutators: tuple) -> bytes:
    for _ in range(rng.choice((1, 1, 1, 2, 3))):
        data = rng.choice(mutators)(rng, data)
    return data


# --------------------------------------------------------------------------- targets


class CaseTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise CaseTimeout in this (main) thread after ``seconds``; POSIX only, else no limit."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: object) -> None:
        raise CaseTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def run_target(target: str, rng: random.Random, seed: Seed, workdir: Path) -> tuple[bytes, Callable[[], object]]:
    """Mutated bytes for ``target`` and the call that parses them."""
    if target == "fingerprint":
        base = seed.fingerprint if not seed.host or rng.random() < 0.8 else seed.host
        data = mutate(rng, base, JSON_MUTATORS)
        return data, lambda: store.parse_fingerprint_bytes(data, "fuzz/fingerprint.json")
    if target == "fingerprint-file":
        data = mutate(rng, seed.fingerprint, JSON_MUTATORS)
        path = _write(workdir, "fingerprint.json", data)
        return data, lambda: store.read_fingerprint(path)
    if target == "signature":
        data = mutate(rng, seed.signature, JSON_MUTATORS)
        payload = seed.fingerprint if rng.random() < 0.7 else mutate(rng, seed.fingerprint, BYTE_MUTATORS)
        key = KEY if rng.random() < 0.8 else b"another-key-0123456789abcdef"
        return data, lambda: signing.check(
            payload, data, key, required=True, fingerprint_path=workdir / "fingerprint.json"
        )
    if target == "arrays":
        data = mutate(rng, seed.reference, NPZ_MUTATORS)
        return data, lambda: npz.load_arrays(workdir / "reference.npz", data)
    if target == "probes":
        data = mutate(rng, seed.probes, NPZ_MUTATORS)
        path = _write(workdir, "probes.npz", data)
        return data, lambda: probes.load_probes(path, seed.inputs)
    if target == "sidecar":
        files = {
            sidecar.FINGERPRINT_FILE: seed.fingerprint,
            signing.SIGNATURE_FILE: seed.signature,
            sidecar.PROBES_FILE: seed.probes,
            sidecar.REFERENCE_FILE: seed.reference,
        }
        name = rng.choice(list(files))
        mutators = JSON_MUTATORS if name.endswith(".json") else NPZ_MUTATORS
        files[name] = mutate(rng, files[name], mutators)
        folder = workdir / "sidecar"
        folder.mkdir(exist_ok=True)
        for n, d in files.items():
            _write(folder, n, d)
        key = KEY if rng.random() < 0.5 else None

        def read_sidecar() -> object:
            fp_path = folder / sidecar.FINGERPRINT_FILE
            with sidecar.RecordReader(folder) as reader:
                fp, _ = record_read.read_record(fp_path, reader, signing_key=key, require_signature=False)
                return record_read.sidecar_arrays(fp, fp_path, reader)

        return files[name], read_sidecar
    raise ValueError(f"unknown target {target!r}")


TARGETS = ("fingerprint", "fingerprint-file", "signature", "arrays", "probes", "sidecar")


@dataclass
class Outcome:
    kind: str  # "ok", "error:<EnvprintError subclass>", "CRASH:<type>", "TIMEOUT"
    detail: str = ""
    seconds: float = 0.0

    @property
    def bad(self) -> bool:
        return self.kind.startswith(("CRASH", "TIMEOUT"))


def run_case(call: Callable[[], object], case_timeout: float) -> Outcome:
    start = time.perf_counter()
    try:
        with time_limit(case_timeout):
            call()
    except CaseTimeout:
        return Outcome("TIMEOUT", f"over {case_timeout} s", time.perf_counter() - start)
    except EnvprintError as exc:
        message = str(exc)
        if "\n" in message or not message:
            return Outcome(f"CRASH:{type(exc).__name__} (not one line)", repr(message)[:300])
        return Outcome(f"error:{type(exc).__name__}", message, time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - the point: anything else is a finding
        return Outcome(f"CRASH:{type(exc).__name__}", str(exc)[:300], time.perf_counter() - start)
    return Outcome("ok", "", time.perf_counter() - start)


@dataclass
class Tally:
    counts: collections.Counter = field(default_factory=collections.Counter)
    failures: list[tuple[str, Outcome, bytes]] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")

    def add(self, target: str, outcome: Outcome, data: bytes) -> None:
        self.counts[(target, outcome.kind)] += 1
        if outcome.seconds > self.slowest[0]:
            self.slowest = (outcome.seconds, target)
        if outcome.bad:
            self.failures.append((target, outcome, data))


def fuzz(
    *,
    seconds: float | None = None,
    cases: int | None = None,
    seed: int = 0,
    targets: tuple[str, ...] = TARGETS,
    case_timeout: float = 5.0,
) -> Tally:
    """Run mutated cases round-robin over ``targets`` until ``seconds`` pass or ``cases`` ran."""
    rng = random.Random(seed)
    tally = Tally()
    deadline = None if seconds is None else time.monotonic() + seconds
    with tempfile.TemporaryDirectory(prefix="envprint-fuzz-") as tmp:
        work = Path(tmp)
        base = build_seed(work / "seed")
        n = 0
        while (cases is None or n < cases) and (deadline is None or time.monotonic() < deadline):
            target = targets[n % len(targets)]
            case_dir = work / "case"
            case_dir.mkdir(exist_ok=True)
            data, call = run_target(target, rng, base, case_dir)
            tally.add(target, run_case(call, case_timeout), data)
            n += 1
    return tally


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="How long to run (default 60).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the mutations (a run is reproducible).")
    parser.add_argument("--target", choices=TARGETS, action="append", help="Only these targets (repeatable).")
    parser.add_argument("--case-timeout", type=float, default=5.0, help="Seconds before a case counts as a hang.")
    parser.add_argument(
        "--crashes", type=Path, default=Path("bench-results/fuzz-crashes"), help="Where failing inputs go."
    )
    args = parser.parse_args(argv)

    tally = fuzz(
        seconds=args.seconds, seed=args.seed, targets=tuple(args.target or TARGETS), case_timeout=args.case_timeout
    )
    total = sum(tally.counts.values())
    print(
        f"{total} cases in {args.seconds:.0f} s (seed {args.seed}); slowest case {tally.slowest[0]:.3f} s ({tally.slowest[1]})"
    )
    print(f"{'target':<18} {'outcome':<32} {'cases':>7}")
    for (target, kind), count in sorted(tally.counts.items()):
        print(f"{target:<18} {kind:<32} {count:>7}")
    if not tally.failures:
        print("no crashes, no hangs: every case ended in an EnvprintError or a valid result")
        return 0
    args.crashes.mkdir(parents=True, exist_ok=True)
    seen = set()
    for target, outcome, data in tally.failures:
        digest = hashlib.sha256(data).hexdigest()[:16]
        (args.crashes / f"{target}-{digest}.bin").write_bytes(data)
        if (target, outcome.kind, outcome.detail) not in seen:  # one line per distinct failure
            seen.add((target, outcome.kind, outcome.detail))
            print(f"FAIL {target} {outcome.kind}: {outcome.detail} (e.g. {args.crashes / f'{target}-{digest}.bin'})")
    print(f"{len(tally.failures)} failing cases, {len(seen)} distinct; inputs in {args.crashes}/")
    return 1


if __name__ == "__main__":
    sys.exit(main())
