"""Building settings, transactions and an in-process adapter for adapter tests (no sockets)."""

from __future__ import annotations

import dataclasses

from icapdlp.http import HttpHeaders, HttpRequestHead, HttpResponseHead
from icapdlp.adaptation.factory import build_adapter, worker_initializer
from icapdlp.adaptation.inline import InlinePool
from icapdlp.config.schema import ServiceOptions, Settings
from icapdlp.dicom.options import ProfileOptions
from icapdlp.payload.options import PayloadOptions
from icapdlp.transaction import Transaction

KEY = bytes(range(32))
#: header-only profile: no OCR, so adapter tests stay fast (pixels are tested in their own area)
NO_PIXELS = ProfileOptions(clean_pixel_data=False)


def make_settings(*, profile: ProfileOptions = NO_PIXELS, payload: PayloadOptions | None = None,
                  services: dict[str, ServiceOptions] | None = None, **sections) -> Settings:
    services = services or {
        "deid-req": ServiceOptions(method="REQMOD"),
        "deid-resp": ServiceOptions(method="RESPMOD"),
        "block-req": ServiceOptions(method="REQMOD", mode="block"),
        "audit-req": ServiceOptions(method="REQMOD", mode="report-only"),
    }
    return Settings(profile=profile, payload=payload or PayloadOptions(), services=services, **sections)


def make_adapter(settings: Settings | None = None):
    settings = settings or make_settings()
    init, args = worker_initializer(settings, KEY)
    return build_adapter(settings, KEY, InlinePool(init, args))


def request_tx(content_type: str | None, length: int | None, *, service: str = "deid-req",
               extra: list[tuple[str, str]] = (), allow_206: bool = False, preview_size: int | None = 4096,
               has_body: bool = True) -> Transaction:
    fields = [("Host", "pacs.example"), ("ETag", '"abc"'), ("Content-MD5", "xyz"), ("Digest", "sha-256=x"),
              ("X-Keep", "1")]
    if content_type is not None:
        fields.append(("Content-Type", content_type))
    if length is not None:
        fields.append(("Content-Length", str(length)))
    head = HttpRequestHead("POST", "/upload", "HTTP/1.1", HttpHeaders(fields + list(extra)))
    return Transaction("tx-test-1", service, "REQMOD", head, None, has_body, True, allow_206, preview_size)


def response_tx(content_type: str | None, length: int | None, *, service: str = "deid-resp",
                extra: list[tuple[str, str]] = (), allow_206: bool = False,
                accept: str | None = None) -> Transaction:
    req_fields = [("Host", "pacs.example")] + ([("Accept", accept)] if accept else [])
    request = HttpRequestHead("GET", "/studies/1", "HTTP/1.1", HttpHeaders(req_fields))
    fields = [("ETag", '"v1"'), ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"), ("X-Keep", "1")]
    if content_type is not None:
        fields.append(("Content-Type", content_type))
    if length is not None:
        fields.append(("Content-Length", str(length)))
    response = HttpResponseHead("HTTP/1.1", 200, "OK", HttpHeaders(fields + list(extra)))
    return Transaction("tx-test-2", service, "RESPMOD", request, response, True, True, allow_206, 4096)


def with_service(tx: Transaction, service: str) -> Transaction:
    return dataclasses.replace(tx, service=service)
