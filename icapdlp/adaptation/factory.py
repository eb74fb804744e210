"""The two names the server's composition root calls to get an adapter and its workers ready."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from icapdlp.adaptation import engines, worker_tasks
from icapdlp.adaptation.adapter import DlpAdapter
from icapdlp.adaptation.inline import InlinePool
from icapdlp.config.keys import fingerprint


def policy(settings: Any, key: bytes) -> worker_tasks.Policy:
    """The policy handed to worker tasks; its token names one (settings, key) pair."""
    # every setting counts here (limits too), not only those that change outputs
    digest = hashlib.sha256(repr(settings).encode() + fingerprint(key).encode()).hexdigest()
    return worker_tasks.Policy(digest, settings, key)


def build_adapter(settings: Any, key: bytes, pool: Any) -> DlpAdapter:
    """The adapter for ``settings``; without a pool, tasks run in threads of this process."""
    if pool is None:
        pool = InlinePool()
    return DlpAdapter(settings, pool, policy(settings, key))


def worker_initializer(settings: Any, key: bytes) -> tuple[Callable[..., None], tuple]:
    """A picklable initializer and its arguments, run once in every worker process.

    Workers record their engine warm-up in this process's status directory (see
    :mod:`icapdlp.adaptation.engines`), which /readyz reads.
    """
    return worker_tasks.init_worker, (policy(settings, key), engines.status_dir())
