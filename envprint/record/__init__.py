"""The record on disk: its bytes and validation (store), the sidecar folder and atomic publish (sidecar), HMAC signatures, file digests and the probe arrays."""
