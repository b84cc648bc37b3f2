"""Helpers for tests that need a backend of their own: a redis-server to kill, a pgserver to restart."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def private_tmp_dir() -> Iterator[Path]:
    """A tmp dir for pgserver data, deliberately *not* under pytest's basetemp.

    As root, pgserver runs Postgres as the ``pgserver`` user and opens the data
    dir's parents to it; but every pytest session on the machine resets
    ``/tmp/pytest-of-root`` to mode 0700, which would lock the server out of its
    own data in the middle of a run.
    """
    path = Path(tempfile.mkdtemp(prefix="lluminary-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Any, *, deadline: float, what: str) -> None:
    """Bounded polling of an external condition that offers nothing to wait on."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class RedisProcess:
    """Our own throwaway ``redis-server`` on a free port, which tests may kill and restart."""

    def __init__(self, port: int | None = None, args: list[str] | None = None) -> None:
        self.port = port or free_port()
        self.args = list(args or [])
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server must be installed for the store tests"
        # No persistence: a restarted server starts empty, like a real crash without AOF.
        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(
            [binary, *args, "--daemonize", "no", *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, deadline=10, what=f"redis-server on port {self.port}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                reply = sock.recv(16)
                return reply.startswith((b"+PONG", b"-NOAUTH"))  # up, with or without a password
        except OSError:
            return False


def own_pgserver(pgdata: Path) -> Any:
    """A private pgserver instance (cleanup_mode='delete') for tests that stop or restart it."""
    from lluminary.stores.postgres._embedded import _pgserver

    return _pgserver().get_server(pgdata, cleanup_mode="delete")
