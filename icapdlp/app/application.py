"""Composition root: settings -> key -> worker pool -> adapter -> observer -> server.

This package sits above every other layer but the command line, so it imports
what it wires with plain imports: the DICOM adapter (``icapdlp.adaptation``),
observability, the server. Nothing below imports it back; a layer that needs
something from here is handed it (the server gets an adapter and an observer,
never this module).

The product always serves with the DICOM adapter (:func:`adapter_factory`);
the pass-through adapter is only ever passed in explicitly, by protocol tests
and the benchmark.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from icapdlp import __version__
from icapdlp.adaptation import engines, factory as dlp_factory
from icapdlp.app import lifecycle
from icapdlp.app.acceptors import AcceptorGroup, ForwardingObserver, die_with_parent
from icapdlp.config import Settings, load_settings
from icapdlp.config.drift import RunningConfigCheck
from icapdlp.config.keys import fingerprint, load_key
from icapdlp.errors import ConfigError
from icapdlp.observability import wiring
from icapdlp.observability.events import Observer
from icapdlp.observability.health import Readiness
from icapdlp.observability.logs import configure_logging
from icapdlp.server.istag import make_istag
from icapdlp.server.listener import IcapServer, Runtime, ensure_port_free
from icapdlp.icap.replies import Replies
from icapdlp.server.workers import WorkerPool

log = logging.getLogger("icapdlp.server")


@dataclass(frozen=True)
class AdapterFactory:
    """How to build an adapter for a settings generation, and what each worker process runs first."""

    build: Callable[[Settings, bytes, "WorkerPool | None"], Any]
    worker_initializer: Callable[[Settings, bytes], tuple[Callable[..., Any], tuple]] | None = None


def adapter_factory() -> AdapterFactory:
    """The product's adapter: DICOM de-identification (``icapdlp.adaptation.factory``)."""
    return AdapterFactory(dlp_factory.build_adapter, dlp_factory.worker_initializer)


def build_observer(settings: Settings, key: bytes) -> Observer:
    """Metrics + audit observer, its build_info carrying the digest the ISTag is made from."""
    return wiring.build_observer(settings, policy_digest=settings.behaviour_digest(fingerprint(key)))


def readiness_checks(pool: WorkerPool | None, running: Callable[[], tuple[Settings, bytes]],
                     config_path: str | None) -> Readiness:
    """The checks behind /readyz and systemd's READY=1 (one set, so both say the same).

    "workers" (a worker process runs), "config" (the files still give the
    running policy: :class:`~icapdlp.config.drift.RunningConfigCheck`),
    "tesseract" and "ner_model" (the pixel engines the policy needs; see
    :func:`engine_checks`). ``running`` gives the running settings and key, and
    follows reloads.
    """
    readiness = Readiness()
    if pool is not None:
        readiness.add("workers", lambda: bool(pool.pids))
    readiness.add("config", RunningConfigCheck(config_path, running))
    for name, check in engine_checks(lambda: running()[0], pool).items():
        readiness.add(name, check)
    return readiness


async def start_observability(settings: Settings, observer: Observer, pool: WorkerPool | None,
                              readiness: Readiness):
    """Worker gauges and the /metrics, /healthz, /readyz listener; returns what to close, or None.

    None also for an observer without metrics (a test's or the benchmark's).
    """
    if not hasattr(observer, "metrics"):
        return None
    if pool is not None:
        wiring.watch_worker_pool(observer, pool)
    return await wiring.start_health_server(settings, observer, readiness)


def engine_checks(current_settings: Callable[[], Settings], pool: WorkerPool | None) -> dict[str, Callable]:
    """The "tesseract" and "ner_model" checks: cheap lookups here plus what workers recorded."""
    readiness = engines.EngineReadiness(current_settings, lambda: pool.pids if pool is not None else (),
                                        engines.status_dir() if pool is not None else None)
    return {name: readiness.check(name) for name in engines.ENGINES}


def startup_problems(settings: Settings) -> list[str]:
    """Problems the loader cannot see (a configured model package that is not installed)."""
    return engines.startup_problems(settings)


def worker_share(processes: int, acceptors: int, index: int) -> int:
    """Worker processes for acceptor ``index``: the configured total split between acceptors."""
    total = processes or os.cpu_count() or 1
    return max(1, total // acceptors + (1 if index < total % acceptors else 0))


def build_runtime(settings: Settings, key: bytes, adapter) -> Runtime:
    """Adapter plus the replies (ISTag) that belong to exactly this settings generation."""
    istag = make_istag(__version__, settings.behaviour_digest(fingerprint(key)))
    replies = Replies(
        istag, {name: svc.method for name, svc in settings.services.items()},
        preview_size=settings.server.preview_size, options_ttl=settings.server.options_ttl,
        max_connections=settings.limits.max_connections)
    return Runtime(adapter=adapter, replies=replies)


async def _build_adapter(factory: AdapterFactory, settings: Settings, key: bytes, pool):
    adapter = factory.build(settings, key, pool)
    return await adapter if inspect.isawaitable(adapter) else adapter


class App:
    """A running icapdlp: server, worker pool, observer, and the reload that swaps policies."""

    def __init__(self, settings: Settings, key: bytes, factory: AdapterFactory, *,
                 observer: Observer | None = None, use_pool: bool = True,
                 config_path: str | None = None, port: int | None = None, acceptor_index: int = 0) -> None:
        self.settings = settings
        self.port = port
        self.acceptor_index = acceptor_index
        self.acceptors = settings.server.acceptors or os.cpu_count() or 1
        self.group = None
        self.key = key
        self.factory = factory
        self.observer = observer
        self.use_pool = use_pool
        self.config_path = config_path
        self.pool: WorkerPool | None = None
        self.server: IcapServer | None = None
        #: the readiness checks (/readyz, systemd's READY=1); None when an observer was passed in
        self.readiness = None
        self._health = None

    async def start(self) -> None:
        settings, key = self.settings, self.key
        try:
            if self.use_pool:
                initializer, initargs = None, ()
                if self.factory.worker_initializer is not None:
                    initializer, initargs = self.factory.worker_initializer(settings, key)
                self.pool = WorkerPool.from_options(
                    settings.workers, worker_share(settings.workers.processes, self.acceptors, self.acceptor_index),
                    initializer=initializer, initargs=initargs)
                await self.pool.start()
            adapter = await _build_adapter(self.factory, settings, key, self.pool)
            if self.observer is None:
                self.observer = build_observer(settings, key)
                self.readiness = readiness_checks(self.pool, lambda: (self.settings, self.key), self.config_path)
                self._health = await start_observability(settings, self.observer, self.pool, self.readiness)
            if self.acceptors > 1 and self.acceptor_index == 0:
                ensure_port_free(settings.server.host, settings.server.port if self.port is None else self.port)
                if settings.tls.enabled:
                    ensure_port_free(settings.server.host, settings.tls.port)
            self.server = IcapServer(settings, build_runtime(settings, key, adapter), self.observer,
                                     port=self.port, reuse_port=self.acceptors > 1)
            await self.server.start()
            if self.acceptors > 1 and self.acceptor_index == 0:
                self.group = AcceptorGroup(acceptor_main, self.acceptors, self.config_path, self.server.port,
                                           self.observer)
                self.group.start()
        except BaseException:
            await self.stop(0)
            raise

    @property
    def metrics_address(self) -> str | None:
        """``host:port`` of the /metrics, /healthz, /readyz listener, or None when it is off."""
        if self._health is None:
            return None
        return f"{self.settings.metrics.host}:{self._health.port}"

    @property
    def istag(self) -> str:
        return self.server.runtime.replies.istag

    async def stop(self, grace: float | None = None) -> None:
        grace = self.settings.server.shutdown_grace if grace is None else grace
        stopping = []
        if self.server is not None:
            stopping.append(self.server.shutdown(grace))
        if self.group is not None:
            stopping.append(self.group.stop(grace))
        await asyncio.gather(*stopping)
        if self.pool is not None:
            await self.pool.close()
        if self._health is not None:
            await self._health.close()
        close = getattr(self.observer, "close", None)
        if close is not None:
            close()

    async def reload(self) -> bool:
        """Re-read the configuration and swap adapter + ISTag atomically; keep the old on any error.

        Listener, limits and worker settings need a restart; only what the
        adapter and the ISTag derive from changes here.
        """
        try:
            settings = load_settings(self.config_path)
            problems = startup_problems(settings)
            if problems:
                raise ConfigError(problems)
            key = load_key(settings.key)
            adapter = await _build_adapter(self.factory, settings, key, self.pool)
        except ConfigError as exc:
            log.error("reload rejected, keeping the running policy: %s", exc)
            self._record_reload(False)
            return False
        except Exception as exc:  # the text may name files, never payload; keep it short
            log.error("reload rejected, keeping the running policy: %s", type(exc).__name__)
            self._record_reload(False)
            return False
        if self.group is not None:
            self.group.signal(signal.SIGHUP)  # every acceptor re-reads the same file itself
        runtime = build_runtime(settings, key, adapter)
        old = self.istag
        self.server.swap_runtime(runtime)
        self.settings, self.key = settings, key
        self._record_reload(True, settings.behaviour_digest(fingerprint(key)))
        configure_logging(settings.logging, process="main" if self.acceptor_index == 0
                          else f"acceptor {self.acceptor_index}")
        log.info("reloaded configuration; ISTag %s -> %s", old, runtime.replies.istag)
        return True

    def _record_reload(self, succeeded: bool, policy_digest: str | None = None) -> None:
        """Reload metrics, and build_info's policy digest (the digest the ISTag is made from)."""
        metrics = getattr(self.observer, "metrics", None)
        if metrics is not None and hasattr(metrics, "record_reload"):
            metrics.record_reload(succeeded, policy_digest)


def acceptor_main(config_path: str | None, port: int, index: int, conn, parent_pid: int) -> None:
    """Entry point of an extra acceptor process (spawned by :class:`AcceptorGroup`).

    It lives here, not with the group, because it builds an :class:`App`; the
    group is handed it, so the two modules do not import each other.
    """
    die_with_parent(parent_pid)
    configure_logging(process=f"acceptor {index}")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the first acceptor decides when to stop
    try:
        settings = load_settings(config_path)
        configure_logging(settings.logging, process=f"acceptor {index}")
        key = load_key(settings.key)
    except ConfigError as exc:
        log.error("acceptor %d cannot start: %s", index, exc)
        sys.exit(2)
    app = App(settings, key, adapter_factory(), observer=ForwardingObserver(conn), config_path=config_path,
              port=port, acceptor_index=index)
    lifecycle.run(app, reload=app.reload)
