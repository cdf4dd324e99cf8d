"""Implementations of the service's ports that are not SQL repositories: in-memory twins."""
