"""Adapters from envprint to the tools its users already live in.

One module per tool: ``keras`` (a training callback; imports Keras when imported),
``pytest_plugin`` (registered through the ``pytest11`` entry point), ``junit`` (JUnit XML for CI
panels) and ``tfserving`` (the TF Serving warm-up file). They use envprint's library API
(``save``, ``verify``, the models, ``render``); nothing below them imports them, and importing
this package imports nothing: ``import envprint`` stays free of TensorFlow and of the tools.
"""
