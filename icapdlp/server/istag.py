"""The ISTag: one quoted token that changes exactly when behaviour changes.

RFC 3507 section 4.7 limits it to 32 bytes. It is derived from the software
version and ``Settings.behaviour_digest`` (policy plus a key fingerprint), so
replicas with the same configuration announce the same tag and clients keep
cached verdicts across them, while any policy or key change invalidates them.
"""

from __future__ import annotations

import hashlib

#: RFC 3507: "ISTag ... is a quoted-string of up to 32 bytes"; we keep the quotes inside too
MAX_ISTAG_BYTES = 32
#: 64 bits of digest make an accidental collision between two policies negligible
_MIN_DIGEST_CHARS = 16


def make_istag(version: str, behaviour_digest: str) -> str:
    """``"<version>-<digest prefix>"``, quotes included, at most 32 bytes."""
    room = MAX_ISTAG_BYTES - 2 - len(version) - 1
    if room < _MIN_DIGEST_CHARS:  # an unusually long version string: hash it in instead
        return '"' + hashlib.sha256(f"{version}:{behaviour_digest}".encode()).hexdigest()[:MAX_ISTAG_BYTES - 2] + '"'
    return f'"{version}-{behaviour_digest[:room]}"'
