"""Settings of the ICAP listener: address, TLS, limits and the worker pool.

Every limit has a safe default and a comment on why that number: the server
reads bytes from a network it does not control, so each reader is bounded.

The layers below the configuration own their options (``icapdlp.dicom.options``,
``icapdlp.pixels.options``, ...) and never import this package. The server sits
above it and reads the settings object it is handed, so its options live here,
with the object that assembles them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB
#: a worker needs this much address space to import its engines at all; a smaller cap is a typo
MIN_WORKER_MEMORY = 256 * MiB


@dataclass(frozen=True)
class ServerOptions:
    """Where and how the ICAP listener runs."""

    host: str = "127.0.0.1"  # loopback by default: exposing ICAP is an explicit choice
    port: int = field(default=1344, metadata={"min": 0, "max": 65535})
    #: ISTag stays stable per version + policy; this adds an operator-chosen suffix
    istag_salt: str = ""
    options_ttl: int = field(default=3600, metadata={"min": 0})
    preview_size: int = field(default=4096, metadata={"min": 0, "max": 65536})
    #: client addresses (exact IPs or CIDR networks) allowed to connect; empty = any
    allowed_clients: tuple[str, ...] = ()
    #: seconds to finish in-flight requests after SIGTERM before exiting
    shutdown_grace: float = field(default=30.0, metadata={"min": 0})
    #: processes accepting ICAP connections on the same port (SO_REUSEPORT); one event
    #: loop uses one core, so a busy multi-core host wants one per core (0 = one per core).
    #: The worker processes are divided between them; metrics and audit stay in the first.
    acceptors: int = field(default=1, metadata={"min": 0, "max": 64})


@dataclass(frozen=True)
class TlsOptions:
    """ICAPS listener (TLS to the ICAP server). Off unless ``enabled``."""

    enabled: bool = False
    port: int = field(default=11344, metadata={"min": 0, "max": 65535})
    cert_file: str | None = None
    key_file: str | None = None
    #: when set, clients must present a certificate signed by this CA
    client_ca_file: str | None = None

    def __post_init__(self) -> None:
        if self.enabled and not (self.cert_file and self.key_file):
            raise ValueError("tls.enabled needs tls.cert_file and tls.key_file")


@dataclass(frozen=True)
class LimitsOptions:
    """Hard limits on what one client may make the server read or hold."""

    #: RFC 3507 gives no maximum; 64 KiB holds any real ICAP header block
    icap_header_bytes: int = field(default=64 * KiB, metadata={"min": 1024})
    #: encapsulated HTTP header blocks (req-hdr + res-hdr); Squid's own default is 64 KiB
    http_header_bytes: int = field(default=64 * KiB, metadata={"min": 1024})
    #: one chunk; Squid sends at most 64 KiB, so 16 MiB only rejects nonsense sizes
    chunk_bytes: int = field(default=16 * MiB, metadata={"min": 1024})
    #: whole encapsulated body; larger uploads are blocked with limit-exceeded
    body_bytes: int = field(default=2 * GiB, metadata={"min": 1024})
    #: bodies above this are spooled to a temporary file instead of memory
    spool_memory_bytes: int = field(default=8 * MiB, metadata={"min": 0})
    spool_dir: str | None = None
    max_connections: int = field(default=1000, metadata={"min": 1})
    #: seconds a persistent connection may sit idle between requests, and a request may wait
    #: on its client (the next body bytes, or room to write the answer) without progress
    idle_timeout: float = field(default=60.0, metadata={"min": 0.1})
    #: seconds to receive a complete ICAP header block (slowloris defence)
    header_timeout: float = field(default=10.0, metadata={"min": 0.1})
    #: seconds for one whole transaction, body and adaptation included
    request_timeout: float = field(default=300.0, metadata={"min": 0.1})
    #: seconds a large response's body may stop arriving, held whole, before its bytes are
    #: released as a check clears them. Squid 5.7 stops sending once about 64 KiB wait unanswered
    #: (bug 5352): a pause this long starts the release. A body that keeps arriving is checked
    #: once, whole, at its end (release checks cost about twice that walk). 0 releases from the
    #: first byte on; ``payload.release_responses = false`` never releases.
    release_after_pause: float = field(default=0.03, metadata={"min": 0, "max": 10})


@dataclass(frozen=True)
class WorkerOptions:
    """The process pool that runs parsing, OCR and NER off the event loop."""

    #: 0 means one per CPU core
    processes: int = field(default=0, metadata={"min": 0, "max": 256})
    #: seconds one object may take in a worker before it is killed and blocked
    task_deadline: float = field(default=120.0, metadata={"min": 0.1})
    #: requests waiting for a worker beyond this answer 503 (overload)
    max_queue: int = field(default=256, metadata={"min": 1})
    #: each worker's address-space cap (RLIMIT_AS) in bytes. A task that reaches it is blocked
    #: with limit-exceeded and its worker replaced. 0 (the default) shares 3/4 of the host's
    #: memory (or of the cgroup's limit) equally between all workers: 8.8 GiB each for two
    #: workers on 24 GB, above the ~5 GiB that cleaning a max_pixel_bytes image peaks at.
    max_memory_bytes: int = field(default=0, metadata={"min": 0})

    def __post_init__(self) -> None:
        if 0 < self.max_memory_bytes < MIN_WORKER_MEMORY:
            raise ValueError(f"workers.max_memory_bytes must be 0 (automatic) or at least {MIN_WORKER_MEMORY}")
