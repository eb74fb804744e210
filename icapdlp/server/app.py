"""Composition root: settings -> key -> worker pool -> adapter -> observer -> server.

The two imports from other layers live in :func:`find_adapter_factory` and
:func:`build_observer`, and nowhere else, so wiring a new adapter or
observer is a change to this file only.

Fail closed at start-up: when the real adapter (``icapdlp.adaptation.factory``)
is not installed, :func:`find_adapter_factory` returns ``None`` and ``icapdlp
serve`` refuses to start. The pass-through adapter is only ever passed in
explicitly, by protocol tests and the benchmark.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

from icapdlp import __version__
from icapdlp.config import ConfigError, Settings, load_settings
from icapdlp.config.keys import fingerprint, load_key
from icapdlp.observability.events import NullObserver, Observer
from icapdlp.server.istag import make_istag
from icapdlp.server.listener import IcapServer, Runtime
from icapdlp.server.replies import Replies
from icapdlp.server.workers import WorkerPool

log = logging.getLogger("icapdlp.server")

#: module and function that build the real adapter: build_adapter(settings, key, pool) -> Adapter
ADAPTER_FACTORY = ("icapdlp.adaptation.factory", "build_adapter")
#: module and function that build the real observer: build_observer(settings) -> Observer
OBSERVER_FACTORY = ("icapdlp.observability", "build_observer")

AdapterFactory = Callable[[Settings, bytes, "WorkerPool | None"], Any]


def find_adapter_factory() -> AdapterFactory | None:
    """The real adapter factory, or None when that module does not exist (yet).

    Only the absence of the module itself counts as "missing": an ImportError
    raised *inside* it is a bug and propagates.
    """
    module_name, function = ADAPTER_FACTORY
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise
    return getattr(module, function)


def build_observer(settings: Settings) -> Observer:
    """The real observer when observability provides one, else a NullObserver."""
    module_name, function = OBSERVER_FACTORY
    factory = getattr(importlib.import_module(module_name), function, None)
    return NullObserver() if factory is None else factory(settings)


def build_runtime(settings: Settings, key: bytes, adapter) -> Runtime:
    """Adapter plus the replies (ISTag) that belong to exactly this settings generation."""
    istag = make_istag(__version__, settings.behaviour_digest(fingerprint(key)))
    replies = Replies(
        istag, {name: svc.method for name, svc in settings.services.items()},
        preview_size=settings.server.preview_size, options_ttl=settings.server.options_ttl,
        max_connections=settings.limits.max_connections)
    return Runtime(adapter=adapter, replies=replies)


async def _call_factory(factory: AdapterFactory, settings: Settings, key: bytes, pool):
    adapter = factory(settings, key, pool)
    return await adapter if inspect.isawaitable(adapter) else adapter


class App:
    """A running icapdlp: server, worker pool, observer, and the reload that swaps policies."""

    def __init__(self, settings: Settings, key: bytes, factory: AdapterFactory, *,
                 observer: Observer | None = None, use_pool: bool = True,
                 config_path: str | None = None) -> None:
        self.settings = settings
        self.key = key
        self.factory = factory
        self.observer = observer
        self.use_pool = use_pool
        self.config_path = config_path
        self.pool: WorkerPool | None = None
        self.server: IcapServer | None = None

    async def start(self) -> None:
        settings = self.settings
        if self.use_pool:
            self.pool = WorkerPool.from_options(settings.workers)
            await self.pool.start()
        try:
            adapter = await _call_factory(self.factory, settings, self.key, self.pool)
            observer = self.observer if self.observer is not None else build_observer(settings)
            self.server = IcapServer(settings, build_runtime(settings, self.key, adapter), observer)
            await self.server.start()
        except BaseException:
            if self.pool is not None:
                await self.pool.close()
            raise

    @property
    def istag(self) -> str:
        return self.server.runtime.replies.istag

    async def stop(self, grace: float | None = None) -> None:
        grace = self.settings.server.shutdown_grace if grace is None else grace
        if self.server is not None:
            await self.server.shutdown(grace)
        if self.pool is not None:
            await self.pool.close()

    async def reload(self) -> bool:
        """Re-read the configuration and swap adapter + ISTag atomically; keep the old on any error.

        Listener, limits and worker settings need a restart; only what the
        adapter and the ISTag derive from changes here.
        """
        try:
            settings = load_settings(self.config_path)
            key = load_key(settings.key)
            adapter = await _call_factory(self.factory, settings, key, self.pool)
        except ConfigError as exc:
            log.error("reload rejected, keeping the running policy: %s", exc)
            return False
        except Exception as exc:  # the text may name files, never payload; keep it short
            log.error("reload rejected, keeping the running policy: %s", type(exc).__name__)
            return False
        runtime = build_runtime(settings, key, adapter)
        old = self.istag
        self.server.swap_runtime(runtime)
        self.settings, self.key = settings, key
        log.info("reloaded configuration; ISTag %s -> %s", old, runtime.replies.istag)
        return True
