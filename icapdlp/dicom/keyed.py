"""Keyed derivations: UIDs, pseudonyms, date offsets and trace references.

Why keyed: an unkeyed hash of a UID can be confirmed by anyone who holds the
original. With HMAC-SHA256 under the deployment's secret key the mapping is
stable across files, restarts, processes and machines that share the key, and
unrelated under another key. Every derivation uses its own label so outputs
of one kind can never be matched against another kind.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

#: PS3.5 B.2: "2.25." followed by the decimal form of a 128-bit integer
UID_ROOT = "2.25."
_UID_LABEL = b"icapdlp uid v1\0"
_PSEUDONYM_LABEL = b"icapdlp pseudonym v1\0"
_DATE_LABEL = b"icapdlp date offset v1\0"
_REF_LABEL = b"icapdlp trace ref v1\0"
#: UID mappings remembered per process; a study has thousands of UIDs at most
UID_CACHE_SIZE = 65536


def _mac(key: bytes, label: bytes, text: str) -> bytes:
    return hmac.new(key, label + text.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


@lru_cache(maxsize=UID_CACHE_SIZE)
def keyed_uid(key: bytes, uid: str) -> str:
    """Map ``uid`` to ``2.25.<decimal of 128 bits>``: ≤ 44 chars, no leading zeros."""
    return UID_ROOT + str(int.from_bytes(_mac(key, _UID_LABEL, uid.strip("\0 "))[:16], "big"))


def pseudonym(key: bytes, kind: str, value: str, length: int = 16) -> str:
    """An upper-case hex pseudonym for ``value`` (same value -> same pseudonym)."""
    return _mac(key, _PSEUDONYM_LABEL + kind.encode() + b"\0", value.strip()).hex()[:length].upper()


def date_offset_days(key: bytes, patient_identity: str, max_days: int) -> int:
    """Days to move every date of one patient back by: 1..max_days, keyed per patient."""
    return 1 + int.from_bytes(_mac(key, _DATE_LABEL, patient_identity)[:8], "big") % max_days


def trace_ref(key: bytes, uid: str) -> str:
    """16 hex chars naming an original UID in reports and audit logs, useless without the key."""
    return _mac(key, _REF_LABEL, uid.strip("\0 ")).hex()[:16]
