"""Orchestration of one model: capture the host, save a record, verify against it (and investigate a mismatch in child processes), compare outputs."""
