"""A free TCP port on 127.0.0.1, for servers and JAX clusters the tests start."""

import socket


def free_port():
    """A port nothing listens on now (the OS picks it; the caller binds it soon)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
