"""Are the pixel engines (Tesseract, the NER model) usable? For start-up, readiness and workers.

Three questions, answered at three costs:

- :func:`startup_problems` (``serve``, ``check-config``, reload): can every
  configured engine work here? The OCR engine is started once (library and
  language data, or the ``tesseract`` program); the spaCy model package is
  looked up, not loaded. A typo in any engine setting must stop the server
  before it answers, not block every image later.
- :class:`EngineReadiness` (``/readyz``): the same cheap checks plus
  ``tesseract`` on PATH, run off the event loop, cached for a few seconds, and
  combined with what each live worker process recorded when it warmed up (the
  only place the model is really loaded). The main process never loads it.
- :func:`record_worker_status` (worker initializer): one small JSON file per
  worker process in a directory the server created, read back by the above.

A failing engine never stops a worker: the cleaner blocks each object that
needs it (pixel-cleaning-impossible); readiness tells the orchestrator.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

#: seconds a readiness answer is reused: probes come every few seconds, and the
#: PATH / package lookups need not run more often than that
STATUS_CACHE_SECONDS = 5.0
ENGINES = ("tesseract", "ner_model")


def needs_pixel_engines(settings: Any) -> bool:
    """Whether any service's effective profile cleans burned-in text (and so needs OCR and NER)."""
    return any(settings.profile_for(name).clean_pixel_data for name in settings.services)


def startup_problems(settings: Any) -> list[str]:
    """Every engine setting that cannot work on this machine, each with its reason; [] when none.

    The one start-up check of the pixel engines, for ``serve``, ``check-config``
    and reload alike: the OCR engine really starts once (library loadable and
    language data present, or the ``tesseract`` program and its languages), and
    the NER model package must be installed (looked up, not loaded).
    """
    if not needs_pixel_engines(settings):
        return []
    from icapdlp.pixels.ner import model_installed
    from icapdlp.pixels.ocr import engine_problem

    opts = settings.pixels
    problems = [engine_problem(opts.ocr_language, opts.ocr_engine, opts.tesseract_library)]
    if not model_installed(opts.ner_model):
        problems.append(f"pixels.ner_model: the spaCy model package {opts.ner_model!r} is not installed "
                        "(install the model package or configure an installed one)")
    return [f"{problem}; needed because a profile has clean_pixel_data on" for problem in problems if problem]


def main_process_status(settings: Any) -> dict[str, bool]:
    """Cheap checks in this process; engines the policy does not use count as ready."""
    if not needs_pixel_engines(settings):
        return dict.fromkeys(ENGINES, True)
    from icapdlp.pixels import engine_status

    return engine_status(settings)  # the OCR engine's presence + the model package lookup: nothing loaded


# -- what workers recorded -------------------------------------------------

_STATUS_DIR: str | None = None


def status_dir() -> str:
    """This server process's directory for worker reports (created once, removed at exit)."""
    global _STATUS_DIR
    if _STATUS_DIR is None:
        _STATUS_DIR = tempfile.mkdtemp(prefix="icapdlp-engines-")
        atexit.register(shutil.rmtree, _STATUS_DIR, True)
    return _STATUS_DIR


def record_worker_status(directory: str | None, status: dict[str, bool]) -> None:
    """Write this worker's warm-up result (atomically: a reader never sees half a file)."""
    if directory is None:
        return
    target = Path(directory) / f"{os.getpid()}.json"
    try:
        temp = target.with_suffix(".tmp")
        temp.write_text(json.dumps({name: bool(status.get(name)) for name in ENGINES}))
        os.replace(temp, target)
    except OSError:
        pass  # readiness then relies on the main-process checks alone


def worker_status(directory: str | None, pids: Iterable[int]) -> dict[str, bool]:
    """Engines every live worker that reported could use (a worker not yet reported counts as ok)."""
    status = dict.fromkeys(ENGINES, True)
    if directory is None:
        return status
    for pid in pids:
        try:
            recorded = json.loads((Path(directory) / f"{pid}.json").read_text())
        except (OSError, ValueError):
            continue
        for name in ENGINES:
            status[name] = status[name] and bool(recorded.get(name, False))
    return status


class EngineReadiness:
    """The "tesseract" and "ner_model" readiness checks, sharing one cached evaluation."""

    def __init__(self, settings: Callable[[], Any], pids: Callable[[], Iterable[int]],
                 directory: str | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._pids = pids
        self._directory = directory
        self._clock = clock
        self._cached: tuple[float, dict[str, bool]] | None = None
        self._lock = asyncio.Lock()

    async def status(self) -> dict[str, bool]:
        async with self._lock:
            now = self._clock()
            if self._cached is None or now - self._cached[0] >= STATUS_CACHE_SECONDS:
                settings, pids = self._settings(), list(self._pids())
                main = await asyncio.to_thread(main_process_status, settings)
                workers = (worker_status(self._directory, pids) if needs_pixel_engines(settings)
                           else dict.fromkeys(ENGINES, True))
                self._cached = (now, {name: main[name] and workers[name] for name in ENGINES})
            return dict(self._cached[1])

    def check(self, name: str) -> Callable[[], Any]:
        async def engine_ready() -> bool:
            return (await self.status())[name]
        return engine_ready
