"""Why outputs differ, without TensorFlow, Keras or NumPy.

One module per cause family (identity, inference, onednn, determinism, versions, gpu, cpu,
environment), each holding its causes' data, remedy values, preflight conditions, restore steps
and the facts they expect; ``registry`` assembles the one list; ``explain`` scores it and
predicts (preflight), ``diff`` compares fingerprints, ``restore`` plans the child runs.
"""
