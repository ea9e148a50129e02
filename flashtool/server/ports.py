"""Loopback ports for the servers that tests, benchmarks and the local PostgreSQL start: chosen
by the kernel and held, so that no other process on the machine takes one between the choice
and the server listening on it, or while a server is killed and started again on it."""

import socket


class PortHold:
    """A free loopback port, kept from everyone else until close(). The holding socket is bound
    with SO_REUSEADDR and never listens: Linux then gives the port to no other bind() (a port-0
    one, or one without SO_REUSEADDR) and to no outgoing connection as its local end, while a
    server that binds it with SO_REUSEADDR and listens (aiohttp as the station server sets it,
    nginx, PostgreSQL) still can. Binding port 0 and closing the socket, as the tests did,
    left the port free for any of those to take (another session's tests on a shared machine,
    a reader's own connection attempt while the server was down: a server that then cannot
    start)."""

    def __init__(self, host="127.0.0.1"):
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, 0))
        self.port = self._sock.getsockname()[1]

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
