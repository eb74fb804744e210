"""Find every DICOM object in an HTTP body, whatever it is wrapped in, and rebuild the body.

The walker is the payload layer's core. It knows wrappings (content codings,
multipart, DICOMweb, the JSON model, zip, compressed files) and nothing about ICAP
or about how an object is de-identified: that is the ``ObjectRewriter`` it is
given, so it runs offline, in a worker process, or in a unit test alike.

Contract with the rewriter: returning the *same* object it was given means
"unchanged" (report-only mode); anything else is the new content. A body in
which nothing changed is returned as the original bytes object, so callers
can answer "no change" without comparing megabytes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from icapdlp.payload import archive, dicomjson, encoding, multipart, textruns, transfer
from icapdlp.payload.media import (
    MediaType,
    is_dicom_json_type,
    is_dicom_type,
    is_multipart,
    is_zip_type,
    parse_encodings,
    parse_media_type,
)
from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.sniff import Sniff, embedded_part10_offset, looks_like_zip, sniff_dicom
from icapdlp.report import ObjectReport
from icapdlp.verdict import BlockReason, Blocked

Direction = Literal["request", "response"]

#: DICOMweb media types of bulk data and frames (PS3.18 §8.7.3): pixels with no header to check
BULK_DATA_TYPES = frozenset({
    "application/octet-stream", "image/jpeg", "image/jls", "image/jp2", "image/jpx", "image/j2c",
    "image/jphc", "image/dicom-rle", "image/x-dicom-rle", "video/mpeg", "video/mp4", "video/h265",
    "image/png", "image/gif", "video/mpeg2", "image/jxl",
})
#: declared types whose body may be the DICOM JSON model
JSON_TYPES = frozenset({"application/dicom+json", "application/json", "text/json", ""})


class ObjectRewriter(Protocol):
    """De-identifies one object; returns its argument itself to mean "unchanged"."""

    def rewrite_dicom(self, data: bytes) -> tuple[bytes, ObjectReport]: ...

    def rewrite_json(self, dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]: ...


@dataclass
class Findings:
    """Counts gathered while walking; becomes the TransactionReport."""

    objects_by_wrapping: Counter = field(default_factory=Counter)
    totals: ObjectReport = field(default_factory=ObjectReport)
    study_refs: list[str] = field(default_factory=list)
    instance_refs: list[str] = field(default_factory=list)
    wrapping: str = "none"

    def add(self, label: str, report: ObjectReport) -> None:
        self.objects_by_wrapping[label] += 1
        report.merge_into(self.totals)
        if report.study_ref and report.study_ref not in self.study_refs:
            self.study_refs.append(report.study_ref)
        if report.instance_ref:
            self.instance_refs.append(report.instance_ref)

    @property
    def objects(self) -> int:
        return sum(self.objects_by_wrapping.values())


@dataclass
class Rewritten:
    body: bytes
    changed: bool
    findings: Findings


class PayloadWalker:
    """One walk over one message body (not thread-safe; make one per message)."""

    def __init__(self, rewriter: ObjectRewriter, options: PayloadOptions, direction: Direction,
                 max_inflated_bytes: int) -> None:
        self._rewriter = rewriter
        self._options = options
        self._direction = direction
        #: inflate limit for content codings and gzip files (the archive limit is the options')
        self._max_inflated = min(max_inflated_bytes, options.max_inflated_bytes)
        self.findings = Findings()

    def rewrite_message(self, content_type: str | None, content_encodings: list[str],
                        body: bytes) -> Rewritten:
        """Rewrite a whole HTTP body given its Content-Type and its Content-Encoding header values.

        The values are normalised here (``GZIP``, ``x-gzip``, ``gzip, identity``
        all mean gzip): comparing them raw refused valid uploads.
        """
        codings = parse_encodings(content_encodings)
        new = self._entity(parse_media_type(content_type), codings, body, 0, "raw", top=True)
        return Rewritten(new, new is not body, self.findings)

    # -- one entity -------------------------------------------------------

    def _entity(self, media: MediaType, codings: list[str], body: bytes, depth: int, label: str,
                *, top: bool = False, bulk_context: bool = False, dicom_declared: bool = False) -> bytes:
        """``dicom_declared``: a part of a multipart/related whose root type is application/dicom."""
        if depth > self._options.max_nesting:
            raise Blocked(BlockReason.LIMIT_EXCEEDED,
                          f"wrappings nested deeper than {self._options.max_nesting}")
        if codings:
            return self._coded(media, codings, body, depth, label, top, bulk_context, dicom_declared)
        if dicom_declared:
            self._check_dicom_declared_part(media, body)
        if is_multipart(media):
            return self._multipart(media, body, depth, top)
        if is_dicom_type(media):
            return self._dicom(body, label, top)
        if is_dicom_json_type(media) or (media.essence in JSON_TYPES
                                         and dicomjson.looks_like_dicom_json(body)):
            return self._json(body, top)
        if is_zip_type(media) or looks_like_zip(body):
            return self._zip(body, depth, top)
        compression = encoding.body_compression(body) or encoding.declared_compression(media.essence)
        if compression is not None:
            return self._compressed_file(body, compression, depth, label, top)
        if sniff_dicom(body, complete=True) is Sniff.DICOM:
            return self._dicom(body, label, top)
        if bulk_context and media.essence in BULK_DATA_TYPES and self._options.bulk_data == "block":
            raise Blocked(BlockReason.UNCHECKABLE_BULK_DATA,
                          "DICOMweb bulk data or frames without a header cannot be checked")
        if media.essence == "application/dicom+xml":
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "the DICOM XML model is not supported")
        if embedded_part10_offset(body) is not None:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "a DICOM file inside content that is not unpacked")
        if (encoded := self._encoded_text(body, depth, label)) is not None:
            return encoded
        return body

    def _mark(self, label: str, top: bool) -> None:
        if top and self.findings.wrapping == "none":
            self.findings.wrapping = label

    def _dicom(self, body: bytes, label: str, top: bool) -> bytes:
        new, report = self._rewriter.rewrite_dicom(body)
        self.findings.add(label, report)
        self._mark(label, top)
        return body if new is body else new

    def _json(self, body: bytes, top: bool) -> bytes:
        changed = False

        def rewrite(dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]:
            nonlocal changed
            new, report = self._rewriter.rewrite_json(dataset)
            changed = changed or new is not dataset
            return new, report

        new_body = dicomjson.rewrite_json_body(body, rewrite,
                                               lambda report: self.findings.add("json", report))
        self._mark("json", top)
        return new_body if changed else body

    def _coded(self, media: MediaType, codings: list[str], body: bytes, depth: int, label: str,
               top: bool, bulk_context: bool = False, dicom_declared: bool = False) -> bytes:
        coding = codings[-1]  # the last one applied is undone first
        inner = encoding.inflate(body, coding, self._max_inflated)
        new_inner = self._entity(media, codings[:-1], inner, depth + 1, label, top=top,
                                 bulk_context=bulk_context, dicom_declared=dicom_declared)
        if new_inner is inner:
            return body
        return encoding.encode(new_inner, coding)

    def _encoded_text(self, body: bytes, depth: int, label: str) -> bytes | None:
        """A body written as text, or holding files written as text (``textruns``).

        Base64, hex and percent-encoded runs (JSON strings, data: URIs, form
        values, whole encoded bodies): each decoded run is classified like any
        entity. None: the body holds no encoded run; otherwise the body with
        every changed run replaced by its new content in the run's own layout
        (the same object when nothing changed). A run receivers may read two
        ways, or DICOM in a JSON string that cannot be rewritten in place, is
        refused.
        """
        runs = textruns.find_runs(body)
        whole = textruns.whole_body_run(body)
        if whole is not None and not runs:
            runs = [whole]  # base64 broken up by spaces: only the whole body is one run
        elif whole is not None and [(r.start, r.end) for r in runs] != [(whole.start, whole.end)]:
            if self._finds_dicom(whole.decoded, depth, label):  # (e.g. PEM armour read as base64 too)
                raise Blocked(BlockReason.UNINSPECTABLE, "DICOM in the whole-body reading of encoded text")
        for decoded in textruns.escaped_json_runs(body, runs):
            if self._finds_dicom(decoded, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE,
                              "DICOM in a JSON string whose escapes or spaces cannot be rewritten in place")
        if not runs:
            return None
        pieces: list[bytes] = []
        position = 0
        for run in runs:
            if run.alternative is not None and self._finds_dicom(run.alternative, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE, f"DICOM in the other reading of a {run.kind} run")
            new = self._entity(MediaType(), [], run.decoded, depth + 1, label)
            if new is not run.decoded:
                pieces += [body[position:run.start], run.encode(new, body)]
                position = run.end
        if not pieces:
            return body
        pieces.append(body[position:])
        return b"".join(pieces)

    def _compressed_file(self, body: bytes, coding: str, depth: int, label: str, top: bool) -> bytes:
        """A body that is a compressed file (.gz, .bz2, .xz, .zst): decoded whole and classified.

        Never judged on a decoded prefix: a .tar.gz whose first member is 80 KB
        of noise holds its DICOM member past any prefix worth sniffing.
        """
        inner = encoding.inflate(body, coding, self._max_inflated)
        new_inner = self._entity(MediaType(), [], inner, depth + 1, label, top=top)
        return body if new_inner is inner else encoding.encode(new_inner, coding)

    def _multipart(self, media: MediaType, body: bytes, depth: int, top: bool) -> bytes:
        boundary = multipart.boundary_of(media)
        parsed = multipart.parse_multipart(body, boundary, self._options.max_multipart_parts)
        related = media.essence == "multipart/related"
        if related:
            label = "stow" if self._direction == "request" else "wado"
            default_type = parse_media_type(media.param("type") or "")
        else:
            label, default_type = "form", MediaType()
        dicom_declared = related and is_dicom_type(default_type)
        dash_boundary = b"--" + boundary.encode("ascii")
        changed = False
        before = self.findings.objects
        new_parts = []
        for part in parsed.parts:
            part_media = part.media_type if part.header("Content-Type") else default_type
            if media.essence == "multipart/byteranges" and (
                    is_dicom_type(part_media) or sniff_dicom(part.content, complete=True) is Sniff.DICOM):
                raise Blocked(BlockReason.UNPARSEABLE_DICOM, "byte ranges of a DICOM object")
            part_codings = _part_codings(part)
            new_content = self._part_content(part, part_media, part_codings, depth, label,
                                             bulk_context=related, dicom_declared=dicom_declared)
            if new_content is part.content:
                new_parts.append(part)
            else:
                changed = True
                new_parts.append(multipart.replace_content(part, new_content, dash_boundary))
        if top and self.findings.objects > before:
            self.findings.wrapping = label
        if not changed:
            return body
        parsed.parts = new_parts
        return parsed.to_rewritten_bytes()

    def _part_content(self, part: multipart.Part, media: MediaType, codings: list[str], depth: int,
                      label: str, **context: bool) -> bytes:
        """A part's content: its transfer encoding undone, classified, and redone if it changed.

        Werkzeug and most web frameworks ignore Content-Transfer-Encoding and
        hand over the bytes as sent. Base64 bytes are read that way anyway (as
        a base64 run); quoted-printable ones are checked as they are too, so
        binary labelled quoted-printable cannot hide behind its decoding.
        """
        cte = transfer.transfer_encoding(part.headers)
        if cte == "quoted-printable" and self._finds_dicom(part.content, depth, label):
            raise Blocked(BlockReason.UNINSPECTABLE, "a quoted-printable part holds DICOM as sent")
        content = part.content if cte is None else transfer.decode_transfer(part.content, cte)
        new = self._entity(media, codings, content, depth + 1, label, **context)
        if new is content:
            return part.content
        return new if cte is None else transfer.encode_transfer(new, cte)

    def _finds_dicom(self, content: bytes, depth: int, label: str) -> bool:
        """Whether a second reading of some bytes (as sent, the other decoding) holds DICOM.

        Only finding DICOM counts. Bytes that merely look like a compressed
        stream (quoted-printable leaves a bzip2 magic readable) and do not
        decode are no finding: a receiver reading them so gets nothing either.
        """
        try:
            return self._entity(MediaType(), [], content, depth + 1, label) is not content
        except Blocked as blocked:
            if blocked.reason is BlockReason.UNSUPPORTED_ENCODING:
                return False
            raise

    def _check_dicom_declared_part(self, part_media: MediaType, content: bytes) -> None:
        """Fail closed on a part of a DICOM-declared multipart/related we would not rewrite.

        In ``multipart/related; type="application/dicom"`` (STOW-RS, WADO-RS)
        every part is DICOM by declaration. A part that is neither declared nor
        sniffed as DICOM, nor the JSON model, nor bulk data the policy lets
        through, is most likely a DICOM object whose Content-Type or magic got
        damaged: passing it as opaque data would pass its PHI.
        """
        if is_dicom_type(part_media) or sniff_dicom(content, complete=True) is Sniff.DICOM:
            return  # rewritten; a part that does not parse is blocked by the rewriter
        if is_dicom_json_type(part_media) or (part_media.essence in JSON_TYPES - {""}
                                              and dicomjson.looks_like_dicom_json(content)):
            return  # metadata in the DICOM JSON model: rewritten as JSON
        if part_media.essence in BULK_DATA_TYPES:
            return  # bulk data / frames: the policy (bulk_data) decides in _entity
        raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                      "a part of a DICOM multipart/related body is not recognisable as DICOM")

    def _zip(self, body: bytes, depth: int, top: bool) -> bytes:
        limits = archive.ArchiveLimits(self._options.max_archive_members, self._options.max_compression_ratio,
                                       self._options.max_inflated_bytes)
        members, comment = archive.read_archive(body, limits)
        before = self.findings.objects
        replacements: dict[str, bytes | None] = {}
        for member in members:
            if member.info.is_dir():
                continue
            if member.is_dicomdir:
                # DICOMDIR lists names, IDs and UIDs of every patient in the archive; it is not regenerated
                replacements[member.name] = None
                continue
            new = self._entity(MediaType(), [], member.data, depth + 1, "zip")
            if new is not member.data:
                replacements[member.name] = new
        if top and self.findings.objects > before:
            self.findings.wrapping = "zip"
        if not replacements:
            return body
        rebuilt, _ = archive.rebuild_archive(members, comment, lambda m: replacements.get(m.name, m.data))
        return rebuilt


def _part_codings(part: multipart.Part) -> list[str]:
    return parse_encodings([v for k, v in part.headers if k.lower() == "content-encoding"])
