"""The cheap first look: may this HTTP body hold DICOM at all?

Called on the encapsulated HTTP head and the ICAP preview, before any body is
read. Most traffic (pages, scripts, images, downloads) is cleared here, which
matters twice: it keeps the proxy at wire speed, and Squid lets the server say
"no change" outside the preview only for bodies under 64 KiB, so for larger
bodies this is the only chance to avoid copying them through the server.

The answer errs towards reading the body: anything that might be a candidate
and cannot be ruled out from the bytes at hand is NEED_BODY.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from icapdlp.payload import dicomjson, encoding, textruns
from icapdlp.payload.media import (
    MediaType,
    is_dicom_json_type,
    is_dicom_type,
    is_multipart,
    is_zip_type,
    parse_encodings,
    parse_media_type,
)
from icapdlp.payload.sniff import Sniff, embedded_part10_offset, looks_like_zip, sniff_dicom
from icapdlp.payload.walker import JSON_TYPES

#: inflate at most this much of a compressed preview just to look inside
PREVIEW_INFLATE_BYTES = 64 * 1024
#: leading bytes a JSON sniff needs before "not the DICOM JSON model" is believable
JSON_SNIFF_BYTES = 64


class Verdict(enum.Enum):
    PASS = "pass"  # cannot hold DICOM: no change
    NEED_BODY = "need-body"  # may hold DICOM somewhere: read it all
    RAW_DICOM = "raw-dicom"  # the body itself is one DICOM object (206 may apply)
    UNSUPPORTED_ENCODING = "unsupported-encoding"  # a candidate under a coding we cannot undo


@dataclass(frozen=True)
class Triage:
    verdict: Verdict
    media: MediaType
    codings: tuple[str, ...]


def triage(content_type: str | None, content_encodings: list[str], preview: bytes, complete: bool) -> Triage:
    """Classify a body from its declared type, its codings and its first bytes."""
    media = parse_media_type(content_type)
    codings = tuple(parse_encodings(content_encodings))
    return Triage(_verdict(media, codings, preview, complete), media, codings)


def _verdict(media: MediaType, codings: tuple[str, ...], preview: bytes, complete: bool) -> Verdict:
    if complete and not preview:
        return Verdict.PASS  # no body at all
    if codings:
        if any(c not in encoding.SUPPORTED_CODINGS for c in codings):
            return Verdict.UNSUPPORTED_ENCODING  # whatever the type says: we cannot tell what is inside
        if len(codings) > 1:
            return Verdict.NEED_BODY  # stacked codings are rare: look at the whole thing
        inner = encoding.inflate_prefix(preview, codings[0], PREVIEW_INFLATE_BYTES)
        inner_complete = complete and len(inner) < PREVIEW_INFLATE_BYTES
        if not inner and preview:
            return Verdict.NEED_BODY  # let the full inflate report what is wrong with it
        plain = _verdict(media, (), inner, inner_complete)
        return Verdict.NEED_BODY if plain is Verdict.RAW_DICOM else plain
    if is_multipart(media) or is_dicom_json_type(media) or is_zip_type(media):
        return Verdict.NEED_BODY
    if is_dicom_type(media):
        return Verdict.RAW_DICOM
    if encoding.body_compression(preview) or encoding.declared_compression(media.essence):
        return Verdict.NEED_BODY  # a compressed file is judged on all of its content, never a prefix
    if looks_like_zip(preview):
        return Verdict.NEED_BODY
    sniffed = sniff_dicom(preview, complete)
    if sniffed is Sniff.DICOM:
        return Verdict.RAW_DICOM
    if sniffed is Sniff.UNDECIDED or embedded_part10_offset(preview) is not None:
        return Verdict.NEED_BODY  # (a DICOM file further in, e.g. in a tar: the worker refuses it)
    if media.essence in JSON_TYPES:
        if dicomjson.looks_like_dicom_json(preview):
            return Verdict.NEED_BODY
        if not complete and len(preview.lstrip()) < JSON_SNIFF_BYTES:
            return Verdict.NEED_BODY
    if textruns.may_hold_encoded(preview, complete):
        return Verdict.NEED_BODY  # a file written as text: base64 in JSON or a data: URI, hex
    return Verdict.PASS
