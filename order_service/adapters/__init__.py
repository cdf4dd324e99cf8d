"""Adapters: the Order Service's ports implemented (SQL, group commit, bus, HTTP).

Each has its in-memory twin in ``memory.py``. Adapters import no routers and no use cases;
they translate driver faults into the kit's and the service's errors.
"""
