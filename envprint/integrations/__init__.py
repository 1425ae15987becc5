"""Adapters that meet users in the tools they already use (Keras, pytest, MLflow, ...).

Each module here imports only envprint's public layers below it, and its own tool only inside
functions: the tool is an optional extra, and ``import envprint`` never pays for it.
"""
