"""One loader module per model format (``envprint.formats`` names which); ``base`` is their shared contract."""
