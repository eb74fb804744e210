"""The one settings object: every section, assembled from the layers' options.

Each section's dataclass lives with the layer that uses it when that layer is
below this package (dicom, payload, pixels, observability), and in
:mod:`icapdlp.config.server_options` for the server, which sits above it. This
module only puts them together, adds the per-service table and the key
location, and knows which parts change behaviour (and so the ISTag).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from icapdlp.config.server_options import LimitsOptions, ServerOptions, TlsOptions, WorkerOptions
from icapdlp.dicom.options import DicomLimits, ProfileOptions, ServiceMode
from icapdlp.observability.options import AuditOptions, LoggingOptions, MetricsOptions
from icapdlp.payload.options import PayloadOptions
from icapdlp.pixels.options import PixelOptions


@dataclass(frozen=True)
class KeyOptions:
    """Where the pseudonymisation key comes from. Exactly one source is used."""

    #: a file holding the key (hex or raw bytes); must not be group/world readable
    file: str | None = None
    #: the key as hex, normally given as ICAPDLP_KEY__HEX; never printed
    hex: str | None = field(default=None, metadata={"secret": True})

    def __post_init__(self) -> None:
        if self.file and self.hex:
            raise ValueError("give key.file or key.hex, not both")


@dataclass(frozen=True)
class ServiceOptions:
    """One ICAP service (URL path) and what it does with DICOM it finds."""

    method: Literal["REQMOD", "RESPMOD"] = "REQMOD"
    #: deidentify (default); block every DICOM object; report-only audits without changing
    mode: ServiceMode = ServiceMode.DEIDENTIFY
    #: bytes icapdlp cannot account for (an unknown archive format, ambiguous multipart framing,
    #: content it cannot unpack): "block" (default) or "pass" them through unchanged
    uninspectable: Literal["block", "pass"] = "block"
    #: per-service profile; keys left out inherit the global [profile] table
    profile: ProfileOptions | None = None
    #: per-service pixel options (e.g. ``all_text = true`` for an ultrasound or secondary-capture
    #: service); keys left out inherit the global [pixels] table
    pixels: PixelOptions | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", ServiceMode(self.mode))  # a string given in code: resolved here too


def _default_services() -> dict[str, ServiceOptions]:
    return {
        "deid-req": ServiceOptions(method="REQMOD"),
        "deid-resp": ServiceOptions(method="RESPMOD"),
    }


@dataclass(frozen=True)
class Settings:
    """Everything icapdlp reads from its configuration, frozen after start-up."""

    server: ServerOptions = field(default_factory=ServerOptions)
    tls: TlsOptions = field(default_factory=TlsOptions)
    limits: LimitsOptions = field(default_factory=LimitsOptions)
    workers: WorkerOptions = field(default_factory=WorkerOptions)
    key: KeyOptions = field(default_factory=KeyOptions)
    profile: ProfileOptions = field(default_factory=ProfileOptions)
    dicom_limits: DicomLimits = field(default_factory=DicomLimits)
    pixels: PixelOptions = field(default_factory=PixelOptions)
    payload: PayloadOptions = field(default_factory=PayloadOptions)
    metrics: MetricsOptions = field(default_factory=MetricsOptions)
    audit: AuditOptions = field(default_factory=AuditOptions)
    logging: LoggingOptions = field(default_factory=LoggingOptions)
    services: dict[str, ServiceOptions] = field(default_factory=_default_services)

    def __post_init__(self) -> None:
        if not self.services:
            raise ValueError("at least one [services.NAME] table is needed")
        for name in self.services:
            if not name or "/" in name or not name.isascii():
                raise ValueError(f"service name {name!r} must be a non-empty ASCII path segment")

    def profile_for(self, service: str) -> ProfileOptions:
        """The effective profile of a service (its own table, else the global one)."""
        own = self.services[service].profile
        return own if own is not None else self.profile

    def pixels_for(self, service: str | None) -> PixelOptions:
        """The effective pixel options of a service (its own table, else the global one)."""
        own = self.services[service].pixels if service is not None else None
        return own if own is not None else self.pixels

    def behaviour_digest(self, key_fingerprint: str = "") -> str:
        """A hex digest of everything that changes what the server outputs.

        Addresses, ports, TLS files, limits on connections and logging do not
        change outputs, so replicas that differ only there share a digest (and
        an ISTag). The key enters only as a fingerprint, never as itself.
        """
        behaviour = {
            "profile": dataclasses.asdict(self.profile),
            "dicom_limits": dataclasses.asdict(self.dicom_limits),
            "pixels": {k: v for k, v in dataclasses.asdict(self.pixels).items() if k != "review_dir"},
            "payload": dataclasses.asdict(self.payload),
            "services": {k: dataclasses.asdict(v) for k, v in sorted(self.services.items())},
            "body_bytes": self.limits.body_bytes,
            "istag_salt": self.server.istag_salt,
            "key": key_fingerprint,
        }
        blob = json.dumps(behaviour, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()


def inherit_service_profiles(data: dict[str, Any]) -> dict[str, Any]:
    """Let ``[services.X.profile]`` and ``[services.X.pixels]`` name only the keys that differ from
    ``[profile]`` and ``[pixels]``."""
    services = data.get("services")
    if not isinstance(services, dict):
        return data
    merged = {}
    for name, svc in services.items():
        for table in ("profile", "pixels"):
            base = data.get(table, {})
            if isinstance(svc, dict) and isinstance(svc.get(table), dict) and isinstance(base, dict):
                svc = {**svc, table: {**base, **svc[table]}}
        merged[name] = svc
    return {**data, "services": merged}
