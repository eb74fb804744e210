"""The operational log: level and format from ``[logging]``, on stderr, applied again on reload.

The log and the audit are two streams with two jobs: the log tells an
operator what the server is doing (start-up, reloads, failures) and goes to
stderr; the audit (:mod:`.audit`) records each transaction and goes only
where ``[audit]`` says. Neither ever carries a patient value: log calls pass
exception *types*, counts and configuration names, and the JSON format below
writes only the formatted message, never ``args`` or a traceback (a
traceback's frames can quote any value).

Python warnings are routed into the log, so with ``format = "json"`` every
line the interpreter writes to stderr is one JSON object. Native libraries
writing to file descriptor 2 directly (Tesseract's C++ warnings) are outside
Python's reach.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TextIO

from icapdlp.observability.options import LoggingOptions

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_TEXT = "%(asctime)s %(levelname)s %(name)s%(icapdlp_process)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ms), level, logger, message, process."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                    + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.process,
        }
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__  # the type only, never the message or frames
        return json.dumps(entry, ensure_ascii=True, separators=(",", ":"))


class _ProcessField(logging.Filter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self.suffix = f"[{process}]" if process != "main" else ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.icapdlp_process = self.suffix
        return True


class _Handler(logging.StreamHandler):
    """Marks the handler this module installed, so a reload replaces it rather than adding one."""


def configure_logging(options: LoggingOptions | None = None, *, process: str = "main",
                      stream: TextIO | None = None) -> None:
    """Install (or replace) the root handler: ``options.level`` and ``options.format`` on stderr.

    ``process`` names the process in each line ("main", "acceptor 2", "worker").
    """
    options = options or LoggingOptions()
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(handler)
    handler = _Handler(stream if stream is not None else sys.stderr)
    if options.format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.addFilter(_ProcessField(process))
        handler.setFormatter(logging.Formatter(_TEXT))
    root.addHandler(handler)
    root.setLevel(_LEVELS[options.level])
    logging.captureWarnings(True)
