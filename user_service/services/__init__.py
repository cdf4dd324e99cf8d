"""Use cases of the User Service, one module per group, over the ports of ``ports.py``.

They import no web framework and no driver, not even indirectly, and catch only the kit's
errors and the service's own.
"""
