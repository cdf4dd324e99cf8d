"""Plumbing shared by both services: no business words, no settings read, no client at import."""
