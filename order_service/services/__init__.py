"""Use cases of the Order Service, and the ports (``ports.py``) they depend on.

No driver, no web framework: they raise and catch only the kit's and the service's errors.
"""
