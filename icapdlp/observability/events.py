"""What the server tells observability about each connection and transaction.

The server calls an :class:`Observer`; the real one (metrics + audit) lives in
this package, and tests or the benchmark may pass :class:`NullObserver`. A
record carries counts and closed-set labels only, never payload values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from icapdlp.transaction import Transaction, TransactionReport
from icapdlp.verdict import BlockReason

Outcome = Literal["no-change", "rewritten", "blocked", "error"]


@dataclass(slots=True)
class TransactionRecord:
    """One finished ICAP request."""

    icap_method: Literal["OPTIONS", "REQMOD", "RESPMOD", "OTHER"]
    icap_status: int
    outcome: Outcome
    duration_seconds: float
    bytes_in: int = 0  # encapsulated body bytes received
    bytes_out: int = 0  # encapsulated body bytes sent
    tx: Transaction | None = None
    reason: BlockReason | None = None
    report: TransactionReport | None = None


class Observer(Protocol):
    def connection_opened(self) -> None: ...
    def connection_closed(self) -> None: ...
    def request_started(self) -> None: ...
    def request_finished(self, record: TransactionRecord) -> None: ...


class NullObserver:
    """Records nothing; for tests and benchmarks of the protocol layer alone."""

    def connection_opened(self) -> None:
        pass

    def connection_closed(self) -> None:
        pass

    def request_started(self) -> None:
        pass

    def request_finished(self, record: TransactionRecord) -> None:
        pass
