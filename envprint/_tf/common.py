"""What every module under ``envprint._tf`` says the same way: the model formats and one-line messages.

Owns: views of ``envprint.formats`` for this package: the ``Format`` type
and ``_LABEL`` (how a message names each format), and ``_one_line`` (an exception's text flattened for a one-line
``ModelError``). Must not import TensorFlow, Keras, NumPy or any other ``envprint._tf`` module
(it reads only ``formats``, ``models`` and ``errors``), so that ``loading``, ``keras_checks`` and
``identity`` can all import it.
"""

from __future__ import annotations

from envprint import formats
from envprint.errors import one_line as _one_line  # noqa: F401 - one helper for the whole package (errors.one_line)
from envprint.models import ModelFormat as Format  # noqa: F401 - the Literal of formats.IDS

# The formats themselves are envprint.formats' entries; this is how this package's messages name them.
_LABEL = {f.id: f.label for f in formats.FORMATS}
