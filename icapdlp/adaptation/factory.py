"""The two names the server's composition root calls to get an adapter and its workers ready."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from icapdlp.adaptation import worker_tasks
from icapdlp.adaptation.adapter import DlpAdapter
from icapdlp.config.keys import fingerprint


def policy_token(settings: Any, key: bytes) -> str:
    """Names one (settings, key) pair in worker processes without sending the key per task."""
    return settings.behaviour_digest(fingerprint(key))


def build_adapter(settings: Any, key: bytes, pool: Any) -> DlpAdapter:
    """The adapter for ``settings``; ``pool`` must run :func:`worker_initializer` in each process."""
    return DlpAdapter(settings, pool, policy_token(settings, key))


def worker_initializer(settings: Any, key: bytes) -> tuple[Callable[..., None], tuple]:
    """A picklable initializer and its arguments, run once in every worker process."""
    return worker_tasks.init_worker, (policy_token(settings, key), settings, key)
