"""Composition root: settings -> key -> worker pool -> adapter -> observer -> server.

Every import from another layer sits in one of five small functions below
(:func:`find_adapter_factory`, :func:`build_observer`, :func:`readiness_checks`,
:func:`start_observability`, :func:`engine_checks`), so wiring a new adapter or observer is a change
to this file only.

Fail closed at start-up: when the real adapter (``icapdlp.adaptation.factory``)
is not installed, :func:`find_adapter_factory` returns ``None`` and ``icapdlp
serve`` refuses to start. The pass-through adapter is only ever passed in
explicitly, by protocol tests and the benchmark.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from icapdlp import __version__
from icapdlp.config import Settings, load_settings
from icapdlp.config.keys import fingerprint, load_key
from icapdlp.errors import ConfigError
from icapdlp.observability.events import NullObserver, Observer
from icapdlp.observability.logs import configure_logging
from icapdlp.server.istag import make_istag
from icapdlp.server.listener import IcapServer, Runtime, ensure_port_free
from icapdlp.server.replies import Replies
from icapdlp.server.workers import WorkerPool

log = logging.getLogger("icapdlp.server")

#: the module that builds the real adapter: build_adapter(settings, key, pool) -> Adapter,
#: and optionally worker_initializer(settings, key) -> (picklable fn, args) run in every worker
ADAPTER_FACTORY_MODULE = "icapdlp.adaptation.factory"


@dataclass(frozen=True)
class AdapterFactory:
    build: Callable[[Settings, bytes, "WorkerPool | None"], Any]
    worker_initializer: Callable[[Settings, bytes], tuple[Callable[..., Any], tuple]] | None = None


def find_adapter_factory() -> AdapterFactory | None:
    """The real adapter factory, or None when that module does not exist.

    Only the absence of the module itself counts as "missing": an ImportError
    raised *inside* it is a bug and propagates.
    """
    try:
        module = importlib.import_module(ADAPTER_FACTORY_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name == ADAPTER_FACTORY_MODULE:
            return None
        raise
    return AdapterFactory(module.build_adapter, getattr(module, "worker_initializer", None))


def build_observer(settings: Settings, key: bytes) -> Observer:
    """Metrics + audit observer from the observability layer (NullObserver if it has none)."""
    factory = getattr(importlib.import_module("icapdlp.observability"), "build_observer", None)
    if factory is None:
        return NullObserver()
    return factory(settings, policy_digest=settings.behaviour_digest(fingerprint(key)))


def readiness_checks(pool: WorkerPool | None, current_settings: Callable[[], Settings]):
    """The checks behind /readyz and systemd's READY=1 (one set, so both say the same).

    "workers" (a worker process runs), "config" (a policy is loaded),
    "tesseract" and "ner_model" (the pixel engines the policy needs; see
    :func:`engine_checks`). ``current_settings`` follows reloads.
    """
    readiness = importlib.import_module("icapdlp.observability").Readiness()
    if pool is not None:
        readiness.add("workers", lambda: bool(pool.pids))
    readiness.add("config", lambda: current_settings() is not None)
    for name, check in engine_checks(current_settings, pool).items():
        readiness.add(name, check)
    return readiness


async def start_observability(settings: Settings, observer: Observer, pool: WorkerPool | None, readiness):
    """Worker gauges and the /metrics, /healthz, /readyz listener; returns what to close, or None."""
    observability = importlib.import_module("icapdlp.observability")
    if not hasattr(observability, "start_health_server") or not hasattr(observer, "metrics"):
        return None
    if pool is not None:
        observability.watch_worker_pool(observer, pool)
    return await observability.start_health_server(settings, observer, readiness)


def engine_checks(current_settings: Callable[[], Settings], pool: WorkerPool | None) -> dict[str, Callable]:
    """The "tesseract" and "ner_model" checks: cheap lookups here plus what workers recorded."""
    engines = importlib.import_module("icapdlp.adaptation.engines")
    readiness = engines.EngineReadiness(current_settings, lambda: pool.pids if pool is not None else (),
                                        engines.status_dir() if pool is not None else None)
    return {name: readiness.check(name) for name in engines.ENGINES}


def startup_problems(settings: Settings) -> list[str]:
    """Problems the loader cannot see (a configured model package that is not installed)."""
    return importlib.import_module("icapdlp.adaptation.engines").startup_problems(settings)


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
                self.readiness = readiness_checks(self.pool, lambda: self.settings)
                self._health = await start_observability(settings, self.observer, self.pool, self.readiness)
            if self.acceptors > 1 and self.acceptor_index == 0:
                ensure_port_free(settings.server.host, settings.server.port if self.port is None else self.port)
                if settings.tls.enabled:
                    ensure_port_free(settings.server.host, settings.tls.port)
            self.server = IcapServer(settings, build_runtime(settings, key, adapter), self.observer,
                                     port=self.port, reuse_port=self.acceptors > 1)
            await self.server.start()
            if self.acceptors > 1 and self.acceptor_index == 0:
                from icapdlp.server.acceptors import AcceptorGroup

                self.group = AcceptorGroup(self.acceptors, self.config_path, self.server.port, self.observer)
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
