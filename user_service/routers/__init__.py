"""Entrypoints of the User Service (HTTP routes, the bus consumer, their dependencies): each
parses, calls one service function, renders."""
