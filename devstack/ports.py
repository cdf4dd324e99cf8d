"""Ports on the loopback interface."""

import socket


def free_port() -> int:
    """A port nothing listens on now. The kernel picks it; the caller binds it soon after."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
