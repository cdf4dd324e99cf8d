"""The single-process deployment: both services in one app, with in-process adapters."""
