"""One ICAP transaction as the layers above the protocol see it, and the counts it leaves behind.

The server makes a :class:`Transaction` for every REQMOD/RESPMOD, the adapter
decides on it and fills a :class:`TransactionReport`, and observability turns
both into metrics and an audit line. Three layers share these two plain
records, so they live on the ground floor: observability can describe a
transaction without importing the adapter contract (``icapdlp.adaptation.api``)
that sits above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from icapdlp.http import HttpRequestHead, HttpResponseHead
from icapdlp.report import NO_WRAPPING, ObjectReport


@dataclass(frozen=True)
class Transaction:
    """One ICAP REQMOD/RESPMOD as the adapter sees it."""

    id: str  # random, PHI-free; shown on block pages and in the audit log
    service: str  # the configured service name (URL path without "/")
    icap_method: Literal["REQMOD", "RESPMOD"]
    request: HttpRequestHead | None  # absent in some RESPMODs
    response: HttpResponseHead | None  # RESPMOD only
    has_body: bool
    allow_204: bool  # the client sent "Allow: 204"
    allow_206: bool  # the client sent "Allow: 206"
    preview_size: int | None  # the client's "Preview:" value, None without preview


@dataclass
class TransactionReport:
    """What the adapter found and did, for metrics and audit (counts only, no values)."""

    #: wrapping label -> DICOM objects found (a ``report.Container`` value, prefixed "compressed>"
    #: when a compression layer was undone to reach it: ``report.wrapping``)
    objects_by_wrapping: dict[str, int] = field(default_factory=dict)
    totals: ObjectReport = field(default_factory=ObjectReport)
    #: keyed hashes of original Study / SOP Instance UIDs, for tracing without revealing
    study_refs: list[str] = field(default_factory=list)
    instance_refs: list[str] = field(default_factory=list)
    wrapping: str = NO_WRAPPING  # the outermost wrapping label, "none" for non-DICOM
