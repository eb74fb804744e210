"""systemd's service notification protocol (``sd_notify``), spoken without libsystemd.

Why: with ``Type=simple`` systemd counts icapdlp as started the moment the
process exists, so Squid (ordered after it) starts too and asks for the ICAP
OPTIONS while icapdlp is still loading its engines; the failed OPTIONS marks
the service down for at least 30 s, and every upload meanwhile gets HTTP 500.
With ``Type=notify`` systemd waits for ``READY=1``, which icapdlp sends only
when the ICAP port listens *and* every readiness check passes (the very
checks ``/readyz`` reports).

The protocol: newline-separated ``KEY=VALUE`` lines in one datagram to the
``AF_UNIX`` socket named by ``$NOTIFY_SOCKET``; a name starting with ``@`` is
in Linux's abstract namespace (the ``@`` stands for a leading NUL byte).
Sending is best effort: a failure is logged once and never stops serving.
The variable is removed from the environment when read, so worker and
acceptor processes (which inherit it) cannot speak for the service.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import MutableMapping

log = logging.getLogger("icapdlp.server")

ENV_VAR = "NOTIFY_SOCKET"
#: seconds between readiness evaluations while waiting to send READY=1; an
#: evaluation is a few cached look-ups, and a quarter second is far below
#: anything systemd or Squid would notice
READY_POLL_SECONDS = 0.25


def socket_address(name: str) -> str | bytes | None:
    """The address to send to for a ``$NOTIFY_SOCKET`` value; None when unusable."""
    if name.startswith("@") and len(name) > 1:
        return b"\0" + name[1:].encode()
    if name.startswith("/"):
        return name
    return None  # e.g. systemd's vsock: form, which a service on this host never gets


class Notifier:
    """Sends state changes to systemd; does nothing when not started by it."""

    def __init__(self, name: str | None) -> None:
        self.address = socket_address(name) if name else None
        if name and self.address is None:
            log.warning("%s is set but is not a socket path or @name; not notifying systemd", ENV_VAR)
        self._warned = False

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] = os.environ) -> "Notifier":
        """Read and remove ``$NOTIFY_SOCKET`` (as ``sd_notify``'s unset_environment does)."""
        return cls(environ.pop(ENV_VAR, None))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram with ``fields`` (``"READY=1"``, ``"STATUS=..."``); True when it was sent."""
        if self.address is None:
            return False
        message = "\n".join(fields).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message, self.address)
        except OSError as exc:
            if not self._warned:
                log.warning("could not notify systemd (%s); continuing", type(exc).__name__)
                self._warned = True
            return False
        return True


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC in microseconds: systemd pairs it with RELOADING=1."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


class ServiceState:
    """What icapdlp tells systemd over its life: ready, reloading, ready again, stopping.

    ``readiness`` is the object behind ``/readyz`` (anything with an async
    ``evaluate() -> (ready, {check: {"ok": bool, ...}})``), or None when the
    server has no checks, in which case a listening port is enough.
    """

    def __init__(self, notifier: Notifier, readiness=None) -> None:
        self.notifier = notifier
        self.readiness = readiness
        self.announced = False
        self._status: str | None = None

    def _set_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.notifier.send(f"STATUS={text}")

    async def announce_when_ready(self, status: str = "serving") -> None:
        """Send READY=1 once every readiness check passes (call after the port listens)."""
        if not self.notifier.enabled:
            return
        while self.readiness is not None:
            ready, checks = await self.readiness.evaluate()
            if ready:
                break
            waiting = ", ".join(sorted(name for name, result in checks.items() if not result.get("ok")))
            self._set_status(f"listening; waiting for readiness checks: {waiting}")
            await asyncio.sleep(READY_POLL_SECONDS)
        self._status = status
        self.notifier.send("READY=1", f"STATUS={status}")
        self.announced = True

    def reloading(self) -> None:
        if self.announced:
            self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={monotonic_usec()}",
                               "STATUS=reloading the policy")

    def reloaded(self, accepted: bool) -> None:
        """READY=1 again: the old policy keeps serving when the new one was rejected."""
        if self.announced:
            status = "serving (reloaded)" if accepted else "serving (reload rejected; previous policy kept)"
            self._status = status
            self.notifier.send("READY=1", f"STATUS={status}")

    def stopping(self) -> None:
        self.notifier.send("STOPPING=1", "STATUS=stopping: finishing in-flight requests")
