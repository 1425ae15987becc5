"""Turn a saved fingerprint's package list into a pip constraints file that recreates that stack.

Owns: ``env_export`` (the text of ``envprint env-export FINGERPRINT``) and ``install_command``
(the remedy line that uses it). Pure: a Fingerprint in, text out; the only fact read from this
host is the Python and platform that will install the pins, and a caller can pass those.
Must not import TensorFlow, Keras or NumPy: ``env-export`` runs before TensorFlow is installed.

Why a constraints file and not a requirements file: ``pip install -c constraints.txt
'tensorflow==X'`` installs only what TensorFlow needs, each at the saved version, so a
package that the saved host had for other reasons (a notebook, a linter) is pinned but never
installed. Every distribution a model's numerics can depend on is listed: a constraint on a
package that is not requested costs nothing, and a pin left out is a version pip is free to
choose. Left out (named in a comment) are the installer's own tools and envprint itself
(``UNPINNED``): they never change what a model computes, and pinning them would hold back the
pip that installs the pins, or ask for an envprint that may exist on no index.
"""

from __future__ import annotations

import platform
import shlex

from packaging.version import InvalidVersion, Version

from envprint.host.names import normalize_name
from envprint.models import Fingerprint

# Distributions that do not take part in a model's numerics: the tools that install packages, and
# the tool that wrote the record.
UNPINNED = frozenset({"envprint", "pip", "setuptools", "wheel"})


def _unpinned(installed: dict[str, str]) -> list[str]:
    return sorted(name for name in installed if normalize_name(name) in UNPINNED)


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _pin_lines(installed: dict[str, str]) -> list[str]:
    lines = []
    for name in sorted(installed):
        if normalize_name(name) in UNPINNED:
            continue
        version = installed[name]
        try:
            Version(version)
        except InvalidVersion:
            # pip refuses the whole file on one bad line; keep the fact, as a comment.
            lines.append(f"# {name} {version!r}: not a PEP 440 version, cannot be pinned")
            continue
        lines.append(f"{name}=={version}")
    return lines


def _requested(fp: Fingerprint) -> list[str]:
    """What to ask pip for on top of the constraints: TensorFlow's distribution (and tf-keras if it was in use)."""
    key = fp.packages.key
    wanted = []
    dist = fp.packages.tensorflow_distribution
    if dist and key.get(dist):
        wanted.append(f"{dist}=={key[dist]}")
    if fp.tensorflow is not None and fp.tensorflow.keras_flavor == "tf_keras" and key.get("tf-keras"):
        wanted.append(f"tf-keras=={key['tf-keras']}")
    if not wanted and key.get("keras"):
        wanted.append(f"keras=={key['keras']}")
    return wanted


def install_command(fp: Fingerprint, fingerprint: str = "FINGERPRINT") -> str:
    """The shell line that recreates the saved stack here: export the constraints, then install under them."""
    pins = " ".join(f"'{p}'" for p in _requested(fp)) or "PACKAGE"
    return (
        f"envprint env-export {shlex.quote(str(fingerprint))} > constraints.txt && "
        f"pip install -c constraints.txt {pins}"
    )


def _host_notes(fp: Fingerprint, python_version: str, system: str, machine: str) -> list[str]:
    notes = []
    saved_py = fp.python.version
    if _minor(python_version) != _minor(saved_py):
        notes.append(
            f"# NOTE: this Python is {python_version}, but these pins were installed under Python {saved_py}: "
            f"binary wheels (TensorFlow's among them) may not exist for {_minor(python_version)}; "
            f"install into a Python {_minor(saved_py)} environment (e.g. uv venv --python {saved_py})"
        )
    saved_plat = (fp.platform.system, fp.platform.machine)
    if (system, machine.lower()) != (saved_plat[0], saved_plat[1].lower()):
        notes.append(
            f"# NOTE: saved on {saved_plat[0]} {saved_plat[1]}, this host is {system} {machine}: "
            "platform-specific pins (CUDA wheels, TensorFlow's distribution) may not install here"
        )
    return notes


def env_export(
    fp: Fingerprint,
    *,
    python_version: str | None = None,
    system: str | None = None,
    machine: str | None = None,
) -> str:
    """A pip constraints file pinning the distributions the saved host had installed, sorted by name.

    All but ``UNPINNED`` (installers and envprint), which a comment names with their versions.

    ``python_version``, ``system`` and ``machine`` describe the host that will install the pins
    (default: this interpreter and platform); a note is added where they differ from the saved host.
    """
    python_version = python_version or platform.python_version()
    system = system or platform.system()
    machine = machine or platform.machine()
    created = fp.model_dump(mode="json")["created_at"]
    where = f"{fp.platform.system} {fp.platform.machine}" + (f" ({fp.platform.libc})" if fp.platform.libc else "")
    header = [
        "# pip constraints: the distributions installed on the host that saved this fingerprint",
        f"# written by envprint {fp.envprint_version} at {created} on {fp.python.implementation} "
        f"{fp.python.version}, {where}",
    ]
    if fp.tensorflow is not None:
        t = fp.tensorflow
        build = f", CUDA {t.build.cuda_version} / cuDNN {t.build.cudnn_version}" if t.build.is_cuda_build else ""
        keras = f", Keras {t.keras_version} ({t.keras_flavor})" if t.keras_version else ""
        header.append(
            f"# TensorFlow {t.version} ({fp.packages.tensorflow_distribution or 'unknown distribution'}{build}){keras}"
        )
    requested = " ".join(f"'{p}'" for p in _requested(fp)) or "PACKAGE"
    header.append(f"# use: pip install -c constraints.txt {requested}  (pins versions; installs only what is asked)")
    unpinned = _unpinned(fp.packages.installed)
    if unpinned:
        left = ", ".join(f"{name} {fp.packages.installed[name]}" for name in unpinned)
        header.append(f"# not pinned: {left} (installers and envprint itself do not change a model's numerics)")
    header += _host_notes(fp, python_version, system, machine)
    return "\n".join(header + _pin_lines(fp.packages.installed)) + "\n"
