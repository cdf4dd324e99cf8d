"""Implementations of the Order Service's ports: SQL, group commit, bus and HTTP, each with its in-memory twin."""
