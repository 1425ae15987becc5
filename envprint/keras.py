"""``envprint.keras``: the Keras callback, ``FingerprintCallback`` (see envprint/integrations/keras.py).

Importing this module imports TensorFlow and Keras; ``import envprint`` does not import it.
"""

from envprint.integrations.keras import FingerprintCallback

__all__ = ["FingerprintCallback"]
