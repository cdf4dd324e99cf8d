"""Use cases of the Order Service, and the ports (protocols) they depend on; no driver, no web framework."""
