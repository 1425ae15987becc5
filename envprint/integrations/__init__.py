"""Adapters that meet users in the tools they already use (Keras, pytest, MLflow, CI panels, TF Serving).

One module per tool: ``keras`` (a training callback; imports Keras when imported),
``pytest_plugin`` (registered through the ``pytest11`` entry point), ``junit`` (JUnit XML for CI
panels), ``tfserving`` (the TF Serving warm-up file) and ``mlflow``. Each imports only envprint's
public layers below it, and its own tool only inside functions: the tool is an optional extra, and
``import envprint`` never pays for it. Importing this package imports nothing.
"""
