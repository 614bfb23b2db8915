"""A small threaded TCP proxy on 127.0.0.1 for network-fault tests (between paramiko and the test sshd).

Modes, set with ``fault()`` at any time and applied to connections accepted
afterwards:

- ``pass``: forward both ways;
- ``drop``: forward until ``after_bytes`` have gone one way (``down`` = server
  to client, ``up`` = client to server), then cut both sockets;
- ``stall``: forward until ``after_bytes`` have gone one way, then forward
  nothing more either way while keeping the connection open.

``connections`` limits how many of the next connections get the fault (None:
every one). Loopback only, daemon threads, and bounded: the proxy stops itself
``lifetime`` seconds after it started, and ``stop()`` ends every connection.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

HOST = "127.0.0.1"
_TICK = 0.1


@dataclass(frozen=True)
class _Fault:
    mode: str  # pass | drop | stall
    direction: str = "down"
    after_bytes: int = 0


class TcpProxy:
    def __init__(self, upstream_port: int, *, lifetime: float = 120.0) -> None:
        self.upstream = (HOST, upstream_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self._listener.listen(16)
        self._listener.settimeout(_TICK)
        self.port: int = self._listener.getsockname()[1]
        self._deadline = time.monotonic() + lifetime
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._fault = _Fault("pass")
        self._remaining: int | None = None
        self._threads: list[threading.Thread] = []
        self.connections = 0  # accepted so far (only the accepting thread writes it)
        self.faults = 0  # connections cut or stalled so far
        self.bytes = {"down": 0, "up": 0}  # forwarded so far, every connection
        self._acceptor = threading.Thread(target=self._accept_loop, name="tcp-proxy-accept", daemon=True)

    # control -------------------------------------------------------------
    def fault(
        self, mode: str, *, direction: str = "down", after_bytes: int = 0, connections: int | None = None
    ) -> None:
        if mode not in ("pass", "drop", "stall") or direction not in ("down", "up"):
            raise ValueError(f"unknown fault {mode!r} {direction!r}")
        with self._lock:
            self._fault = _Fault(mode, direction, after_bytes)
            self._remaining = connections

    def start(self) -> TcpProxy:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._acceptor.join(timeout=5)
        for thread in list(self._threads):
            thread.join(timeout=5)
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # work ----------------------------------------------------------------
    def _running(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    def _next_fault(self) -> _Fault:
        with self._lock:
            if self._fault.mode == "pass":
                return self._fault
            if self._remaining is None:
                return self._fault
            if self._remaining > 0:
                self._remaining -= 1
                return self._fault
            return _Fault("pass")

    def _accept_loop(self) -> None:
        while self._running():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                break
            self.connections += 1
            fault = self._next_fault()
            thread = threading.Thread(target=self._serve, args=(client, fault), name="tcp-proxy-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client: socket.socket, fault: _Fault) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        for sock in (client, server):
            sock.settimeout(5)  # a send to a peer that stopped reading must not block forever
        peer = {client: (server, "up"), server: (client, "down")}
        counted = {"down": 0, "up": 0}
        stalled = False
        try:
            while self._running():
                readable, _, _ = select.select([client, server], [], [], _TICK)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return  # one side closed: close the other
                    if stalled:
                        continue  # swallow it: nothing reaches the other side any more
                    target, direction = peer[sock]
                    if fault.mode != "pass" and direction == fault.direction:
                        allowed = fault.after_bytes - counted[direction]
                        if len(data) >= allowed:
                            if allowed > 0:
                                target.sendall(data[:allowed])
                                self._count(counted, direction, allowed)
                            with self._lock:
                                self.faults += 1
                            if fault.mode == "drop":
                                return
                            stalled = True
                            continue
                    target.sendall(data)
                    self._count(counted, direction, len(data))
        except OSError:
            pass
        finally:
            for sock in (client, server):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _count(self, counted: dict[str, int], direction: str, n: int) -> None:
        counted[direction] += n
        with self._lock:
            self.bytes[direction] += n
