"""Implementations of the User Service's ports: SQL, asyncpg and in-memory twins.

They translate driver errors into the service's own; they import no routers and no services.
"""
