"""Entrypoints of the Order Service: HTTP routes and their dependencies.

They parse, call one use case, and render; no SQL, no commit, no business branching.
"""
