"""Fuzz targets: one function per parser, each checking the layer's own invariants.

Every target takes bytes (already mutated) and returns normally, or raises the
layer's typed refusal (``ALLOWED`` of the target). An ``AssertionError`` from
inside a target is an invariant violation and counts as a finding, like any
other exception. ``tests/fuzz/test_*.py`` drive these with hypothesis;
``benchmarks/fuzz/run.py`` drives the same functions for a long campaign.

Limits are set small here on purpose: the point is to reach the limit checks
(bombs, deep nesting, huge declared lengths) with small inputs, quickly.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from icapdlp.icap import (
    CONNECTION_CLOSED, NEED_DATA, PAUSED, BodyData, CodecLimits, EndOfMessage, PreviewEnd, ProtocolError,
    Request, RequestParser,
)
from icapdlp.verdict import Blocked

#: codec limits for fuzzing: small enough that mutated sizes reach every limit
FUZZ_CODEC_LIMITS = CodecLimits(icap_header_bytes=4096, http_header_bytes=4096, chunk_bytes=64 * 1024,
                                body_bytes=1024 * 1024)
#: a parser must make progress: this many next_event() calls per input byte is far beyond any real need
EVENTS_PER_BYTE = 4
#: DICOM and payload limits small enough to hit with kilobyte inputs
FUZZ_MAX_INFLATED = 4 * 1024 * 1024


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], object]
    allowed: tuple[type[BaseException], ...]
    seeds: Callable[[], list[bytes]]
    #: a product entry point: no warning may escape it (pydicom's quote values; they reach stderr)
    entry_point: bool = False


# -- ICAP codec ---------------------------------------------------------------------------

def drive_parser(data: bytes, piece_sizes: tuple[int, ...] = (0,), *,
                 continue_after_preview: bool = True) -> list:
    """Feed ``data`` in pieces (0 = all at once), then EOF; return a normalised event list.

    Checks while driving: progress (no endless NEED_DATA after EOF), event
    order (Request, BodyData*, PreviewEnd/EndOfMessage), body within limits.
    A ProtocolError ends the transcript as an ("error", type) entry so two
    drives of the same bytes can be compared.
    """
    parser = RequestParser(FUZZ_CODEC_LIMITS)
    pos, piece, eof_sent = 0, 0, False
    events: list = []
    body_total = 0
    in_request = False
    budget = EVENTS_PER_BYTE * (len(data) + 16)
    while budget > 0:
        budget -= 1
        try:
            event = parser.next_event()
        except ProtocolError as exc:
            events.append(("error", type(exc).__name__, getattr(exc, "status_hint", None)))
            return events
        if event is NEED_DATA:
            assert not eof_sent, "parser asks for data after end of stream"
            if pos >= len(data):
                parser.receive_data(b"")
                eof_sent = True
                continue
            size = piece_sizes[piece % len(piece_sizes)] or len(data)
            piece += 1
            parser.receive_data(data[pos:pos + size])
            pos += size
        elif event is PAUSED:
            if continue_after_preview:
                parser.continue_body()
            else:
                parser.finish_early()
                in_request = False
        elif event is CONNECTION_CLOSED:
            assert not in_request, "connection closed reported inside a request"
            events.append(("closed",))
            return events
        elif isinstance(event, Request):
            assert not in_request, "a new request started before the previous one ended"
            in_request = True
            body_total = 0
            events.append(("request", event.method, event.service, tuple(event.encapsulated),
                           event.body_entity, event.preview))
        elif isinstance(event, BodyData):
            assert in_request and event.data, "body data outside a request, or empty"
            body_total += len(event.data)
            assert body_total <= FUZZ_CODEC_LIMITS.body_bytes, "body beyond body_bytes"
            if events and events[-1][0] == "body":
                events[-1] = ("body", events[-1][1] + event.data)
            else:
                events.append(("body", event.data))
        elif isinstance(event, PreviewEnd):
            assert in_request, "preview end outside a request"
            events.append(("preview-end",))
        elif isinstance(event, EndOfMessage):
            assert in_request, "end of message outside a request"
            in_request = False
            events.append(("end", event.ieof, tuple(event.trailers)))
        else:
            raise AssertionError(f"unknown event {type(event).__name__}")
    raise AssertionError("parser made no progress within its event budget")


def icap_codec(data: bytes) -> None:
    """Whole buffer, one byte at a time, and odd pieces must all give the same transcript."""
    whole = drive_parser(data)
    assert drive_parser(data, (1,)) == whole, "byte-at-a-time parse differs from whole-buffer parse"
    assert drive_parser(data, (7, 3, 1024)) == whole, "piecewise parse differs from whole-buffer parse"
    drive_parser(data, (0,), continue_after_preview=False)


# -- HTTP heads, chunk lines, media types ----------------------------------------------------

def http_heads(data: bytes) -> None:
    from icapdlp.icap import headers as hdr
    from icapdlp.icap.chunked import parse_chunk_line
    from icapdlp.payload.media import parse_encodings, parse_media_type

    text = data.decode("latin-1")
    for call in (lambda: hdr.parse_fields(text, "fuzz"), lambda: hdr.parse_http_request_head(text),
                 lambda: hdr.parse_http_response_head(text),
                 lambda: hdr.parse_encapsulated(text, "REQMOD"),
                 lambda: hdr.parse_encapsulated(text, "RESPMOD"),
                 lambda: parse_chunk_line(data, 1 << 20)):
        try:
            call()
        except ProtocolError:
            pass
    media = parse_media_type(text)
    assert media.essence == media.essence.lower()
    for coding in parse_encodings([text]):
        assert coding and coding == coding.strip().lower()


def triage_preview(data: bytes) -> None:
    """The preview decision never raises, whatever the declared type and the bytes."""
    from icapdlp.payload.triage import triage

    cut = data[0] if data else 0
    for content_type in ("application/dicom", "application/octet-stream", "application/zip",
                         "multipart/related; boundary=x", "application/gzip", None):
        for codings in ([], ["gzip"], ["deflate"], ["br"]):
            for complete in (True, False):
                triage(content_type, codings, data[1:1 + cut * 64], complete)


# -- multipart, zip, gzip ---------------------------------------------------------------------

MULTIPART_MAX_PARTS = 50


def multipart(data: bytes) -> None:
    from icapdlp.payload.multipart import parse_multipart

    from tests.fuzz.seeds import BOUNDARY

    parsed = parse_multipart(data, BOUNDARY, MULTIPART_MAX_PARTS)
    assert len(parsed.parts) <= MULTIPART_MAX_PARTS
    assert parsed.to_bytes() == data, "multipart split is not lossless"


def compressed(data: bytes) -> None:
    from icapdlp.payload.encoding import SUPPORTED_CODINGS, inflate, inflate_prefix

    limit = 64 * 1024
    for coding in sorted(SUPPORTED_CODINGS):
        assert len(inflate_prefix(data, coding, limit)) <= limit
        try:
            out = inflate(data, coding, limit)
        except Blocked:
            continue
        assert len(out) <= limit, "inflate returned more than its limit"


def archive(data: bytes) -> None:
    from icapdlp.payload.archive import ArchiveLimits, read_archive, rebuild_archive

    limits = ArchiveLimits(max_members=20, max_ratio=200, max_inflated_bytes=256 * 1024)
    parsed = read_archive(data, limits)
    members, comment = parsed.members, parsed.comment
    assert len(members) <= limits.max_members
    assert sum(len(m.data) for m in members) <= limits.max_inflated_bytes
    rebuilt, _ = rebuild_archive(members, comment, lambda m: m.data)
    again = read_archive(rebuilt, limits).members
    assert [(m.name, m.data) for m in again] == [(m.name, m.data) for m in members], "rebuild changed members"


def tar(data: bytes) -> None:
    from icapdlp.payload.archive import ArchiveLimits
    from icapdlp.payload.tarball import REGULAR_TYPES, read_tar, rebuild_tar

    limits = ArchiveLimits(max_members=20, max_ratio=200, max_inflated_bytes=256 * 1024)
    parsed = read_tar(data, limits)
    assert len(parsed.members) <= limits.max_members
    rebuilt = rebuild_tar(parsed.members, [m.data for m in parsed.members])
    again = read_tar(rebuilt, limits)
    assert again.trailing == b"", "a rebuilt tar has nothing after its end"
    def files(members):
        return [(m.info.name, m.data) for m in members if m.info.type in REGULAR_TYPES]

    assert files(again.members) == files(parsed.members), "rebuild changed members"


# -- DICOM ----------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def dicom_limits():
    from icapdlp.dicom.options import DicomLimits

    return DicomLimits(max_object_bytes=1024 * 1024, max_sequence_depth=8, max_elements=5000,
                       max_inflated_bytes=FUZZ_MAX_INFLATED, max_pixel_bytes=4 * 1024 * 1024)


@lru_cache(maxsize=1)
def pipeline_config():
    from icapdlp.dicom.options import ProfileOptions
    from icapdlp.dicom.pipeline import PipelineConfig

    return PipelineConfig(profile=ProfileOptions(clean_pixel_data=False), limits=dicom_limits(),
                          key=bytes(range(32)))


def prescan(data: bytes) -> None:
    from icapdlp.dicom.prescan import scan

    limits = dicom_limits()
    for truncated in (False, True):
        try:
            with warnings.catch_warnings():  # an internal stage: the pipeline silences it (see pipeline)
                warnings.simplefilter("ignore")
                scanned = scan(data, limits, allow_truncated_pixels=truncated)
        except Blocked:
            continue
        assert 0 < scanned.elements <= limits.max_elements
        assert scanned.max_depth <= limits.max_sequence_depth
        if scanned.dataset_offset is not None:
            assert len(scanned.dataset) + scanned.dataset_offset <= len(data)
        else:
            assert len(scanned.dataset) <= limits.max_inflated_bytes


def pipeline(data: bytes) -> bytes:
    """The whole pipeline; a result must be a readable, clean Part-10 object."""
    import pydicom

    from icapdlp.dicom.pipeline import deidentify_bytes

    result = deidentify_bytes(data, pipeline_config())
    out = result.data
    assert out[:128] == bytes(128) and out[128:132] == b"DICM", "output is not a clean Part-10 object"
    with warnings.catch_warnings():  # our own read-back; its warnings are not the product's
        warnings.simplefilter("ignore")
        pydicom.dcmread(io.BytesIO(out))  # what we let through must be readable again
    return out


def header_only(data: bytes) -> None:
    """The ICAP 206 path: rewrite a header from a prefix, or decline (None), or block."""
    from icapdlp.dicom.pipeline import header_only_rewrite

    cut = max(len(data) // 2, 1)
    found = header_only_rewrite(data[:cut], len(data), pipeline_config())
    if found is not None:
        prefix, offset, _report = found
        assert 0 <= offset <= len(data), "use-original-body offset outside the object"


@lru_cache(maxsize=1)
def _body_policy():
    from icapdlp.adaptation.factory import policy
    from icapdlp.config.schema import ServiceOptions, Settings
    from icapdlp.dicom.options import ProfileOptions
    from icapdlp.payload.options import PayloadOptions

    settings = Settings(profile=ProfileOptions(clean_pixel_data=False), dicom_limits=dicom_limits(),
                        payload=PayloadOptions(max_archive_members=20, max_multipart_parts=50,
                                               max_inflated_bytes=FUZZ_MAX_INFLATED),
                        services={"deid-req": ServiceOptions(method="REQMOD")})
    return policy(settings, bytes(range(32)))


def payload_body(content_type: str | None, codings: tuple[str, ...], data: bytes):
    """The whole worker task (payload walk + pipeline) exactly as a worker runs it."""
    from icapdlp.adaptation.worker_tasks import rewrite_body

    result = rewrite_body(_body_policy(), "deid-req", "request", content_type, list(codings), data, None)
    if result.changed:
        assert result.data is not None and len(result.data) == result.size
    return result


def _seeds(name: str) -> Callable[[], list[bytes]]:
    def load() -> list[bytes]:
        from tests.fuzz import seeds

        if name == "icap":
            return list(seeds.icap_seeds())
        if name == "dicom":
            return seeds.dicom_bytes()
        if name == "multipart":
            return [body for _, ct, _, body in seeds.payload_seeds() if ct.startswith("multipart")]
        if name == "zip":
            return list(seeds.archive_seeds())
        if name == "tar":
            return list(seeds.tar_seeds())
        if name == "compressed":
            return [body for _, body in seeds.compressed_seeds()]
        if name == "heads":
            heads = [s.split(b"\r\n\r\n")[0] for s in seeds.icap_seeds()]
            return heads + [b"3fa; ieof", b"0; use-original-body=12"]
        raise KeyError(name)
    return load


TARGETS: dict[str, Target] = {
    t.name: t for t in (
        Target("icap-codec", icap_codec, (), _seeds("icap")),
        Target("http-heads", http_heads, (), _seeds("heads")),
        Target("triage", triage_preview, (), _seeds("dicom")),
        Target("multipart", multipart, (Blocked,), _seeds("multipart")),
        Target("compressed", compressed, (), _seeds("compressed")),
        Target("zip", archive, (Blocked,), _seeds("zip")),
        Target("tar", tar, (Blocked,), _seeds("tar")),
        Target("prescan", prescan, (), _seeds("dicom")),
        Target("pipeline", pipeline, (Blocked,), _seeds("dicom"), entry_point=True),
        Target("header-only", header_only, (Blocked,), _seeds("dicom"), entry_point=True),
    )
}
