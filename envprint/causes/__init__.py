"""Why outputs differ, without TensorFlow, Keras or NumPy: the cause registry, fingerprint differences, scoring and preflight, the steps that restore a cause."""
