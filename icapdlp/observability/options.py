"""Settings of the metrics/health listener, the operational log and the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class MetricsOptions:
    """Prometheus ``/metrics``, ``/healthz`` and ``/readyz`` on their own port."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = field(default=9344, metadata={"min": 0, "max": 65535})


@dataclass(frozen=True)
class LoggingOptions:
    """The operational log (start-up, reloads, errors): always on stderr, never a patient value.

    Applied at start-up and again on every successful reload.
    """

    level: Literal["debug", "info", "warning", "error"] = "info"
    #: "text": one human-readable line per record; "json": one JSON object per line
    #: (time, level, logger, message, process) for log collectors
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class AuditOptions:
    """One PHI-free JSON line per transaction, written only to ``destination``.

    The default is stdout, so the audit stream never mixes with the log on
    stderr; "stderr" is still accepted for set-ups that collect one stream.
    """

    destination: Literal["stdout", "stderr", "file", "off"] = "stdout"
    file: str | None = None
    #: rotate the audit file at this size, keeping ``backups`` old files
    max_bytes: int = field(default=64 * 1024 * 1024, metadata={"min": 1024})
    backups: int = field(default=10, metadata={"min": 0})

    def __post_init__(self) -> None:
        if self.destination == "file" and not self.file:
            raise ValueError("audit.destination = 'file' needs audit.file")
