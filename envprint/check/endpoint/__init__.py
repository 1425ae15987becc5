"""Endpoint verify: a record's probes replayed to a running model server, its answers judged.

One module per serving protocol (``tfserving_rest``, ``tfserving_grpc``, ...), each a ``Protocol``
subclass (``base.py``); ``registry.PROTOCOLS`` is the one list the ``--protocol`` choices, URL
detection and the docs derive from; ``transport.py`` is the HTTP client they share (bounded
bodies, timeouts, a deadline, no redirect to another host, TLS, headers from the environment);
``verifier.py`` orchestrates. How to add a protocol: ``README-protocol.md`` beside this file.
"""
