"""The cheap first look on the event loop: pass now, refuse now, or read the whole body.

Called on the encapsulated HTTP head and the bytes at hand (an ICAP preview,
or a small body), before any work is sent to a worker. A body passes here
only when those bytes are *all* of it and a probing walk - the walker's own
classification, stopped before anything is decoded or unpacked - accounts for
every byte as not DICOM. A preview that is not the whole body never passes:
a DICOM file can start after the first 64 KiB of a tar, a zip's directory is
at its end, and text can hold an encoded object anywhere. Those bodies are
read whole and classified in a worker.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from icapdlp.payload import encoding
from icapdlp.payload.media import MediaType, is_dicom_type, parse_encodings, parse_media_type
from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.sniff import Sniff, sniff_dicom
from icapdlp.payload.walker import passes_unopened

_DEFAULT_OPTIONS = PayloadOptions()


class Verdict(enum.Enum):
    PASS = "pass"  # all of the body is at hand and none of it can be DICOM: no change
    NEED_BODY = "need-body"  # read it all and classify it in a worker
    RAW_DICOM = "raw-dicom"  # the body itself is one DICOM object (206 may apply)
    UNSUPPORTED_ENCODING = "unsupported-encoding"  # a content coding icapdlp cannot undo


@dataclass(frozen=True)
class Triage:
    verdict: Verdict
    media: MediaType
    codings: tuple[str, ...]


def triage(content_type: str | None, content_encodings: list[str], preview: bytes, complete: bool,
           options: PayloadOptions = _DEFAULT_OPTIONS) -> Triage:
    """Classify a body from its declared type, its codings and the bytes at hand."""
    media = parse_media_type(content_type)
    codings = tuple(parse_encodings(content_encodings))
    return Triage(_verdict(content_type, media, codings, preview, complete, options), media, codings)


def _verdict(content_type: str | None, media: MediaType, codings: tuple[str, ...], preview: bytes,
             complete: bool, options: PayloadOptions) -> Verdict:
    if complete and not preview:
        return Verdict.PASS  # no body at all
    if codings:
        if any(coding not in encoding.SUPPORTED_CODINGS for coding in codings):
            return Verdict.UNSUPPORTED_ENCODING  # whatever the declared type: a receiver may undo it
        return Verdict.NEED_BODY
    if is_dicom_type(media) or sniff_dicom(preview, complete) is Sniff.DICOM:
        return Verdict.RAW_DICOM
    if not complete:
        return Verdict.NEED_BODY
    if passes_unopened(content_type, [], preview, options):
        return Verdict.PASS
    return Verdict.NEED_BODY
