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

import re
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import Any, Iterator, Literal, Protocol

from icapdlp import lenient
from icapdlp.payload import (
    archive, carving, dicomjson, encoding, multipart, signatures, tarball, textruns, transfer, zipscan,
)
from icapdlp.payload.heads import head_values
from icapdlp.payload.media import (
    MediaType,
    is_dicom_json_type,
    is_dicom_type,
    is_multipart,
    is_tar_type,
    is_zip_type,
    parse_encodings,
    parse_media_type,
)
from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.sniff import Sniff, looks_like_zip, sniff_dicom
from icapdlp.report import NO_WRAPPING, Container, ObjectReport, wrapping
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


#: bodies up to this size have their lenient readings (textruns.lenient_readings) joined and
#: classified in one walk; larger ones one reading at a time, so memory stays near one reading
JOINED_READINGS_BYTES = 1024 * 1024


#: lenient readings a binary body may sit in and still have the pieces of its runs joined: base64
#: broken up inside binary, inside the same again, is one reading deep. Joined at every depth,
#: ordinary text nests past max_nesting (base64 tokens of repeated letters read as letters again)
MAX_JOINING_READINGS = 1


#: compressed-stream magics inside one binary body that are decoded; past this many the body
#: cannot be cleared at a bounded cost and is refused
MAX_CARVED_STREAMS = 256
#: ... or one per this many bytes of the body, whichever is more (random bytes show a gzip
#: header by chance about once in 16 MiB)
CARVED_STREAM_SPACING = 64 * 1024
#: output a probing walk decodes from a stream behind a prefix before leaving it to a worker
PROBE_INFLATE_BYTES = 64 * 1024
#: bytes of a carved stream's start read for its header fields (a gzip extra field is at most
#: 64 KiB; a longer name or comment leaves the whole stream uncovered: every magic in it is read)
HEADER_FIELDS_BYTES = 128 * 1024


class NeedsWork(Exception):
    """Raised by a probing walk where a real walk would decode, unpack or rewrite something."""


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
    wrapping: str = NO_WRAPPING

    #: gzip/deflate layers (content codings, .gz files) around the entity being walked
    inflated: int = 0
    #: the outermost wrapping the walk entered, found or not (names a body blocked mid-walk)
    entered: str = NO_WRAPPING

    def label(self, container: Container) -> str:
        """What was unwrapped to reach ``container``: "compressed>zip" when a compression was undone."""
        return wrapping(container, self.inflated > 0)

    def add(self, label: Container, report: ObjectReport) -> None:
        self.objects_by_wrapping[self.label(label)] += 1
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
                 max_inflated_bytes: int, *, pass_uninspectable: bool = False, probe: bool = False) -> None:
        self._rewriter = rewriter
        self._options = options
        self._direction = direction
        #: a service's opt-out: bytes that cannot be accounted for pass as they are (off by default)
        self._pass_uninspectable = pass_uninspectable
        #: a probing walk (see :func:`passes_unopened`) stops with NeedsWork at the first heavy step
        self._probe = probe
        #: inflate limit for content codings and gzip files (the archive limit is the options')
        self._max_inflated = min(max_inflated_bytes, options.max_inflated_bytes)
        self.findings = Findings()
        #: the content of a quoted-printable part while it is checked as sent: its quoted-printable
        #: reading is the part's own decoding, classified (and rewritten) as the part
        self._quoted_printable_as_sent: bytes | None = None
        #: lenient readings (textruns.lenient_readings) being classified around this point: in a
        #: reading of a reading (garbage but for the data it may hold) binary pieces of runs are
        #: not joined, or readings of readings of its garbage nest past max_nesting
        self._within_reading = 0

    def rewrite_message(self, content_type: str | None, content_encodings: list[str],
                        body: bytes) -> Rewritten:
        """Rewrite a whole HTTP body given its Content-Type and its Content-Encoding header values.

        The values are normalised here (``GZIP``, ``x-gzip``, ``gzip, identity``
        all mean gzip): comparing them raw refused valid uploads.
        """
        codings = parse_encodings(content_encodings)
        new = self._entity(parse_media_type(content_type), codings, body, 0, Container.RAW, top=True)
        return Rewritten(new, new is not body, self.findings)

    # -- one entity -------------------------------------------------------

    def _entity(self, media: MediaType, codings: list[str], body: bytes, depth: int, label: Container,
                *, top: bool = False, bulk_context: bool = False, dicom_declared: bool = False) -> bytes:
        """One entity, classified on all of its bytes: rewritten, passed, or refused.

        ``dicom_declared``: a part of a multipart/related whose root type is
        application/dicom. With the service's ``uninspectable = "pass"`` an
        entity that cannot be accounted for passes unchanged; the entities
        around it are still rewritten.
        """
        try:
            return self._classified(media, codings, body, depth, label, top=top, bulk_context=bulk_context,
                                    dicom_declared=dicom_declared)
        except Blocked as blocked:
            if blocked.reason is BlockReason.UNINSPECTABLE and self._pass_uninspectable:
                return body
            raise

    def _classified(self, media: MediaType, codings: list[str], body: bytes, depth: int, label: Container,
                    *, top: bool, bulk_context: bool, dicom_declared: bool) -> bytes:
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
        if is_dicom_json_type(media):
            return self._json(body, top)
        if is_zip_type(media) or looks_like_zip(body):
            return self._zip(body, depth, top)
        compression = encoding.body_compression(body) or encoding.declared_compression(media.essence)
        if compression is not None:
            return self._compressed_file(body, compression, depth, label, top)
        if is_tar_type(media) or tarball.looks_like_tar(body):
            return self._tar(body, depth, top)
        if zipscan.holds_zip(body):  # behind a prefix, or after another zip: unzip finds it from the end
            return self._zip(body, depth, top)
        if sniff_dicom(body, complete=True) is Sniff.DICOM:
            return self._dicom(body, label, top)
        if bulk_context and media.essence in BULK_DATA_TYPES and self._options.bulk_data == "block":
            raise Blocked(BlockReason.UNCHECKABLE_BULK_DATA,
                          "DICOMweb bulk data or frames without a header cannot be checked")
        if media.essence == "application/dicom+xml":
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "the DICOM XML model (PS3.19) is not de-identified")
        declared_text = signatures.declared_charset_text(media.param("charset"), body)
        if declared_text is not None and self._finds_dicom(declared_text, depth, label):
            raise Blocked(BlockReason.UNINSPECTABLE, "DICOM in text of a declared non-ASCII charset")
        boundary = _leading_boundary(body)
        if boundary is not None:  # a MIME body with no declared type (a member, a decoded value)
            return self._multipart(MediaType("multipart/mixed", {"boundary": boundary}), body, depth, top)
        if signatures.is_text(body):
            return self._text(body, depth, label, top)
        return self._binary(body, depth, label, top)

    # -- bodies no wrapping claimed: accounted for, or refused --------------

    def _binary(self, body: bytes, depth: int, label: Container, top: bool) -> bytes:
        """Binary content of no recognised wrapping: passed only when nothing in it can be DICOM.

        A lenient reader's dataset is DICOM; a format icapdlp cannot open, or a
        DICOM marker at any offset, cannot be accounted for; zip records
        anywhere mean an archive `unzip` would find.
        """
        if lenient.looks_like_dataset(body):
            return self._dicom(body, label, top)
        if _DICOM_XML.search(body):  # the XML model in a text with a stray binary byte is still the model
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "the DICOM XML model (PS3.19) is not de-identified")
        for bom, codec in signatures.wide_texts(body):  # UTF-16 or UTF-32 text: classified as the text it is
            text = body[len(bom):].decode(codec).encode("utf-8", "surrogatepass")
            new = self._entity(MediaType(), [], text, depth + 1, label)
            if new is not text:
                try:
                    return bom + new.decode("utf-8", "surrogatepass").encode(codec, "surrogatepass")
                except UnicodeError:
                    raise Blocked(BlockReason.UNINSPECTABLE,
                                  f"rewritten {codec} text cannot be written back as {codec}") from None
        unopenable = signatures.uninspectable_format(body)
        if unopenable is not None:
            raise Blocked(BlockReason.UNINSPECTABLE, f"{unopenable}: a format icapdlp cannot open")
        anchors = signatures.anchor_offsets(body)
        searched = signatures.searched_archive(body, anchors)
        if searched is not None:  # (a self-extracting stub or any bytes before it: its tool finds it)
            raise Blocked(BlockReason.UNINSPECTABLE, f"{searched} inside other bytes: a format icapdlp cannot open")
        tar_at = tarball.tar_offset(body, anchors)
        if tar_at is not None:  # GNU tar skips to it (behind whole blocks); a carving reader, anywhere
            return self._tar_behind_prefix(body, tar_at, depth, top)
        kinds = {kind for _, kind in anchors}
        if any(kind == "zip" and zipscan.plausible_record(body, at) for at, kind in anchors):
            return self._zip(body, depth, top)
        if "dicm" in kinds:  # (signatures.dicom_marker_offset)
            # DICOM by the marker (whatever the declared type), and not where a parser can take it
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "a DICOM marker inside content that is not unpacked")
        try:
            embedded = lenient.embedded_dataset_offset(body)
        except lenient.TooManyCandidates:
            raise Blocked(BlockReason.UNINSPECTABLE,
                          "too many patient-element look-alikes to check") from None
        if embedded is not None:
            raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                          "patient attributes inside content that is not unpacked")
        if dicomjson.looks_like_dicom_json(body):
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "DICOM JSON elements inside binary content")
        if "uuencode" in kinds:  # (GNU uudecode finds a block among any bytes)
            self._check_rarer_encodings(body, depth, label)
        self._check_zlib_streams(body, depth, label)
        self._check_carved_streams(body, anchors, depth, label)
        self._check_unmarked_streams(body, depth, label)
        encoded = self._encoded_text(body, depth, label, text=False)  # text stored in binary (a tar)
        return body if encoded is None else encoded

    def _check_zlib_streams(self, body: bytes, depth: int, label: Container) -> None:
        """Refuse binary content holding DICOM in a zlib stream past its first byte.

        A PDF attachment (FlateDecode), a git packfile's objects, a squashfs
        block and a PNG's image data are zlib streams, found by their format's
        reader or by a carving tool from zlib's header (``carving``). Each
        start a decoder takes is decoded to the stream's end or damage and
        classified; a stream inside one already decoded is its data, read
        already. Like a carved gzip stream, DICOM in one refuses the body. A
        probing walk reads up to PROBE_INFLATE_BYTES itself, so a small PNG or
        PDF still passes from the event loop.
        """
        offsets = carving.zlib_offsets(body)
        if len(offsets) > max(carving.MAX_ZLIB_STREAMS, len(body) // carving.ZLIB_STREAM_SPACING):
            raise Blocked(BlockReason.UNINSPECTABLE, "too many zlib streams to check")
        # output shared by every stream of the body (a probe's is small: a PDF of many streams goes to
        # a worker), and input too: damaged streams cover nothing, so overlaps of crafted ones are bounded
        budget = PROBE_INFLATE_BYTES if self._probe else self._max_inflated
        reading = carving.MAX_ZLIB_READ_FACTOR * len(body)
        covered = 0
        for offset in offsets:
            if offset < covered:
                continue  # (its data, read already)
            try:
                inner, end, read = carving.inflate_zlib(body, offset, budget)
            except Blocked:
                self._heavy()  # (a probing walk leaves a large stream to the worker)
                raise
            budget -= len(inner)
            reading -= read
            if reading < 0:
                raise Blocked(BlockReason.UNINSPECTABLE, "overlapping zlib streams: too much to check")
            if end is not None:
                covered = end  # (where a damaged stream stopped is unknown: it covers nothing)
            if len(inner) < textruns.MIN_BINARY_STRING:
                continue
            with self._decoded_for_real():
                found = self._finds_dicom(inner, depth, label)
            if found:
                raise Blocked(BlockReason.UNINSPECTABLE,
                              "DICOM in a zlib stream behind other bytes (its format's reader or a carving "
                              "tool decodes it)")

    def _check_carved_streams(self, body: bytes, anchors: list[tuple[int, str]], depth: int,
                              label: Container) -> None:
        """Refuse binary content holding DICOM in a compressed stream that starts past its first byte.

        ``gzip -d`` does not skip a prefix, but a receiver that knows where the
        stream starts in its own framing, or searches for the magic as carving
        tools do, decodes it from there to its end or its damage. Such a
        stream cannot be rewritten in place (the bytes around it belong to a
        format icapdlp does not know), so DICOM in it, or a decoding past the
        inflate limit, refuses the body; a magic that decodes to nothing (by
        chance, in random bytes) is no finding.
        """
        offsets = encoding.stream_offsets(body, anchors)
        if len(offsets) > max(MAX_CARVED_STREAMS, len(body) // CARVED_STREAM_SPACING):
            raise Blocked(BlockReason.UNINSPECTABLE, "too many compressed-stream magics to check")
        budget = self._max_inflated  # shared by every stream of the body: magics cannot multiply it
        # the data of the last stream decoded (after its header): a magic inside it is its data, read
        # already; one inside its header fields is not (decoders skip them, a carving tool does not)
        covered_from, covered = 0, 0
        for offset, coding in offsets:
            if covered_from <= offset < covered:
                continue
            limit = min(PROBE_INFLATE_BYTES, budget) if self._probe else budget
            try:
                inner, end = encoding.inflate_leading(body[offset:], coding, limit)
            except Blocked:
                self._heavy()  # (a probing walk leaves a large stream to the worker)
                raise
            budget -= len(inner)
            if end is not None:  # (the header's fields are bytes of this body, classified with it)
                header, _ = encoding.stream_header_fields(body[offset:offset + HEADER_FIELDS_BYTES], coding)
                covered_from, covered = (offset + header, offset + end) if header else (0, 0)
            if len(inner) < textruns.MIN_BINARY_STRING:
                continue  # (too short for any dataset: the garbage a chance magic decodes to)
            self._heavy()
            with self._decoded_for_real():
                found = self._finds_dicom(inner, depth, label)
            if found:
                raise Blocked(BlockReason.UNINSPECTABLE,
                              f"DICOM in a {coding} stream behind other bytes (a carving reader decodes it)")

    def _check_unmarked_streams(self, body: bytes, depth: int, label: Container) -> None:
        """Refuse binary content that is a zlib, raw deflate or LZMA-alone stream holding DICOM.

        No magic number shows these, but an API that inflates what it is sent
        (``zlib.decompress``, PHP's ``gzuncompress``, ``lzma.decompress``)
        reads a body that is one. A decoder that takes the body's first bytes
        (``encoding.unmarked_streams``; random bytes fail within a few) is
        run to the stream's end or damage, and what it gives is classified;
        DICOM in it is refused (nothing marks the body as compressed, so it
        is not rewritten). A probing walk decodes up to PROBE_INFLATE_BYTES
        itself: a chance decoding of ordinary binary must not send every
        such body, or stop every such released download, to a worker.
        Garbage decodes too (repeated letters read as fixed-Huffman codes
        give more repeats, readings of those nest past max_nesting), so
        nothing is tried inside a lenient reading: only on content as sent
        or as a real decoder gave it.
        """
        if self._within_reading:
            return
        for offset, name in encoding.unmarked_streams(body):
            limit = PROBE_INFLATE_BYTES if self._probe else self._max_inflated
            try:
                inner = encoding.inflate_unmarked(body[offset:] if offset else body, name, limit)
            except Blocked:
                self._heavy()  # (a probing walk leaves a large stream to the worker)
                raise
            if len(inner) < textruns.MIN_BINARY_STRING:
                continue  # (the garbage a chance decoding gives)
            if self._finds_dicom(inner, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE, f"DICOM in a {name} stream (a receiver that inflates "
                                                         "the body reads it)")
        # (a brotli file, no magic number: random bytes give about their own size when they decode)
        check_limit = 4 * len(body) + PROBE_INFLATE_BYTES if self._probe else self._max_inflated
        if encoding.is_whole_brotli_stream(body, check_limit):
            self._heavy()
            inner, _ = encoding.inflate_leading(body, "br", self._max_inflated)
            with self._decoded_for_real():
                if self._finds_dicom(inner, depth, label):
                    raise Blocked(BlockReason.UNINSPECTABLE, "DICOM in an undeclared brotli stream")

    def _check_header_fields(self, stream: bytes, coding: str, depth: int, label: Container) -> None:
        """Refuse a compressed body whose header fields (gzip's extra field, name, comment; zstd
        skippable frames) hold DICOM. Decoders step over these bytes, so the decoded content never
        shows them, and the re-encoded body would not carry them over."""
        for field in encoding.stream_header_fields(stream, coding)[1]:
            if len(field) >= textruns.MIN_BINARY_STRING and self._finds_dicom(field, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE,
                              f"DICOM in a {coding} header field (decoders skip it, carving readers do not)")

    def _text(self, body: bytes, depth: int, label: Container, top: bool) -> bytes:
        """Text: DICOM can only ride in it encoded (JSON model, XML model, base64, hex, percent-encoded)."""
        armour = signatures.encrypted_armour(body)
        if armour is not None:
            raise Blocked(BlockReason.UNINSPECTABLE, f"{armour}: ciphertext icapdlp cannot open")
        if _DICOM_XML.search(body):
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "the DICOM XML model (PS3.19) is not de-identified")
        if _dcmtk_text_form(body):
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "a DICOM object in DCMTK's XML or dump text form")
        current = body
        if dicomjson.looks_like_dicom_json(current):
            current = self._json(current, top, declared=False)
        if dicomjson.looks_like_quoted_dicom_json(current):
            raise Blocked(BlockReason.UNPARSEABLE_DICOM,
                          "the DICOM JSON model in an escaped string or a single-quoted literal")
        encoded = self._encoded_text(current, depth, label)
        return current if encoded is None else encoded

    @contextmanager
    def _decoded_for_real(self) -> Iterator[None]:
        """Around content a real decoder produced (a stream that decompressed): not a reading's garbage.

        Garbage does not decompress, so inside what did, binary pieces of runs
        are joined again (see ``_within_reading``).
        """
        within, self._within_reading = self._within_reading, 0
        try:
            yield
        finally:
            self._within_reading = within

    def _heavy(self) -> None:
        """Mark a step that decodes, unpacks or rewrites: a probing walk stops here."""
        if self._probe:
            raise NeedsWork

    def _enter(self, label: Container, top: bool) -> None:
        """Name the outermost wrapping before walking it, so a block mid-walk still reports it."""
        if top and self.findings.entered == NO_WRAPPING:
            self.findings.entered = self.findings.label(label)

    def _mark(self, label: Container, top: bool, *, found: bool = True) -> None:
        if top and found and self.findings.wrapping == NO_WRAPPING:
            self.findings.wrapping = self.findings.label(label)

    def _dicom(self, body: bytes, label: Container, top: bool) -> bytes:
        self._heavy()
        self._enter(label, top)
        new, report = self._rewriter.rewrite_dicom(body)
        self.findings.add(label, report)
        self._mark(label, top)
        return body if new is body else new

    def _json(self, body: bytes, top: bool, *, declared: bool = True) -> bytes:
        """DICOM JSON datasets: a body declared to be the model, or any JSON document holding some."""
        self._heavy()
        self._enter(Container.JSON, top)
        changed = False

        def rewrite(dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]:
            nonlocal changed
            new, report = self._rewriter.rewrite_json(dataset)
            changed = changed or new is not dataset
            return new, report

        before = self.findings.objects
        rewrite_body = dicomjson.rewrite_json_body if declared else dicomjson.rewrite_embedded_datasets
        new_body = rewrite_body(body, rewrite, lambda report: self.findings.add(Container.JSON, report))
        self._mark(Container.JSON, top, found=declared or self.findings.objects > before)
        return new_body if changed else body

    def _coded(self, media: MediaType, codings: list[str], body: bytes, depth: int, label: Container,
               top: bool, bulk_context: bool = False, dicom_declared: bool = False) -> bytes:
        self._heavy()
        coding = codings[-1]  # the last one applied is undone first
        inner = encoding.inflate(body, coding, self._max_inflated)
        self._check_header_fields(body, coding, depth, label)  # (a download saved coded keeps them)
        self.findings.inflated += 1
        try:
            with self._decoded_for_real():
                new_inner = self._entity(media, codings[:-1], inner, depth + 1, label, top=top,
                                         bulk_context=bulk_context, dicom_declared=dicom_declared)
        finally:
            self.findings.inflated -= 1
        if new_inner is inner:
            return body
        return encoding.encode(new_inner, coding)

    def _encoded_text(self, body: bytes, depth: int, label: Container, *, text: bool = True) -> bytes | None:
        """A body written as text, or holding files written as text (``textruns``).

        Base64, hex and percent-encoded runs (JSON strings, data: URIs, form
        values, whole encoded bodies): each decoded run is classified like any
        entity. None: the body holds no encoded run; otherwise the body with
        every changed run replaced by its new content in the run's own layout
        (the same object when nothing changed). A run receivers may read two
        ways, or DICOM in a JSON string that cannot be rewritten in place, is
        refused.
        """
        # in binary, the pieces of runs (broken up by bytes), also inside one lenient reading (base64
        # broken up inside binary, nested in the same again); deeper, long runs alone
        joins = self._within_reading <= MAX_JOINING_READINGS
        stretches = textruns.stretch_regions(body) if not text and joins else None
        regions = textruns.long_run_regions(body, stretches)
        if not text and stretches is None:
            stretches = regions
        runs = textruns.find_runs(body, regions)
        whole = textruns.whole_body_run(body)
        if whole is not None and not runs:
            runs = [whole]  # base64 broken up by spaces: only the whole body is one run
        elif whole is not None and [(r.start, r.end) for r in runs] != [(whole.start, whole.end)]:
            if self._finds_dicom(whole.decoded, depth, label):  # (e.g. PEM armour read as base64 too)
                raise Blocked(BlockReason.UNINSPECTABLE, "DICOM in the whole-body reading of encoded text")
        for decoded in textruns.escaped_json_runs(body, runs, text=text):
            if self._finds_dicom(decoded, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE,
                              "DICOM in a JSON string whose escapes or spaces cannot be rewritten in place")
        for decoded in textruns.number_readings(body) if text else ():
            if self._finds_dicom(decoded, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE,
                              "DICOM written as numbers (decimal byte values, a hex dump, a C array)")
        escaped = textruns.byte_escape_reading(body) if text else None
        if escaped is not None and self._finds_dicom(escaped, depth, label):
            raise Blocked(BlockReason.UNINSPECTABLE, "DICOM written as string-literal byte escapes")
        percent_u = textruns.percent_u_reading(body) if text else None
        if percent_u is not None and self._finds_dicom(percent_u, depth, label):
            raise Blocked(BlockReason.UNINSPECTABLE, "DICOM written as %u escapes")
        pieces: list[bytes] = []
        position = 0
        accounted: list[tuple[int, int]] = []
        for run in runs:
            if run.alternative is not None and self._finds_dicom(run.alternative, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE, f"DICOM in the other reading of a {run.kind} run")
            new = self._entity(MediaType(), [], run.decoded, depth + 1, label)
            if new is not run.decoded:
                pieces += [body[position:run.start], run.encode(new, body)]
                position = run.end
                accounted.append((run.start, run.end))
        self._check_lenient_readings(body, accounted, depth, label, text, stretches)
        if body is not self._quoted_printable_as_sent:
            reading = textruns.quoted_printable_reading(body)
            if reading is not None and self._finds_dicom(reading, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE, "DICOM written as quoted-printable outside a MIME part")
        if not runs:
            return None
        if not pieces:
            return body
        pieces.append(body[position:])
        return b"".join(pieces)

    def _check_lenient_readings(self, body: bytes, accounted: list[tuple[int, int]], depth: int,
                                label: Container, text: bool,
                                stretches: list[tuple[int, int]] | None) -> None:
        """Refuse text whose base64 or hex characters, read at some alignment, hold DICOM no run accounted for.

        Base64 glued behind words made of its alphabet (prose, a token, a
        field name) is read misaligned from the run's first character, so the
        run decodes to garbage; Python's ``b64decode`` of the whole text (it
        skips every other character), or a receiver that cuts the words off,
        gets the object. Where it starts cannot be told from the text, so it
        cannot be rewritten in place: such a body is refused. Runs rewritten
        already (``accounted``) are left out, so an ordinary upload still is.
        """
        readings = textruns.lenient_readings(body, accounted, text=text, stretches=stretches,
                                             join=self._within_reading <= MAX_JOINING_READINGS)
        if text and len(body) <= JOINED_READINGS_BYTES:  # classified as one: one walk instead of up to ten
            # (binary holds few clusters; each reading alone keeps what whole-body checks see: a stream at
            # its start, UTF-16 text)
            readings = iter([b"\0".join(readings)])
        for reading in readings:
            self._within_reading += 1
            try:
                found = reading and self._finds_dicom(reading, depth, label)
            finally:
                self._within_reading -= 1
            if found:
                raise Blocked(BlockReason.UNINSPECTABLE,
                              "DICOM in encoded text that decodes only at another alignment (glued to other text)")
        if text:
            self._check_rarer_encodings(body, depth, label)

    def _check_rarer_encodings(self, body: bytes, depth: int, label: Container) -> None:
        """Refuse base32, ascii85, base85 or uuencoded text (a uudecode reads a block in binary too)."""
        for name in textruns.rarer_encodings(body):
            self._heavy()  # (pure-Python decoders: a probing walk hands the body to a worker)
            reading = textruns.decode_rarer(body, name)
            if reading and self._finds_dicom(reading, depth, label):
                raise Blocked(BlockReason.UNINSPECTABLE, f"DICOM in {name} text")

    def _compressed_file(self, body: bytes, coding: str, depth: int, label: Container, top: bool) -> bytes:
        """A body that is a compressed file (.gz, .bz2, .xz, .zst): decoded whole and classified.

        Never judged on a decoded prefix: a .tar.gz whose first member is 80 KB
        of noise holds its DICOM member past any prefix worth sniffing.
        """
        self._heavy()
        inner = encoding.inflate(body, coding, self._max_inflated)
        self._check_header_fields(body, coding, depth, label)
        self.findings.inflated += 1
        try:
            with self._decoded_for_real():
                new_inner = self._entity(MediaType(), [], inner, depth + 1, label, top=top)
        finally:
            self.findings.inflated -= 1
        return body if new_inner is inner else encoding.encode(new_inner, coding)

    def _multipart(self, media: MediaType, body: bytes, depth: int, top: bool) -> bytes:
        boundary = multipart.boundary_of(media)
        parsed = multipart.parse_multipart(body, boundary, self._options.max_multipart_parts)
        related = media.essence == "multipart/related"
        if related:
            label = Container.STOW if self._direction == "request" else Container.WADO
            default_type = parse_media_type(media.param("type") or "")
        else:
            label, default_type = Container.FORM, MediaType()
        self._enter(label, top)
        dicom_declared = related and is_dicom_type(default_type)
        dash_boundary = b"--" + boundary.encode("ascii")
        changed = False
        before = self.findings.objects
        new_parts = []
        for part in parsed.parts:
            self._check_part_head(part)
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
        if media.essence == "multipart/byteranges":
            self._check_joined_ranges(parsed.parts, depth, label)
        self._mark(label, top, found=self.findings.objects > before)
        if not changed:
            return body
        parsed.parts = new_parts
        return parsed.to_rewritten_bytes()

    def _check_part_head(self, part: multipart.Part) -> None:
        """Refuse a part whose header values (its filename, any extra field) hold an object.

        Werkzeug hands a part's filename and headers to the application as it
        does an HTTP head's: an encoded object there is read by one decode
        call and cannot be rewritten in place. The head check owns that walk.
        """
        check_head(None, part.headers, self._options)

    def _check_joined_ranges(self, parts: list[multipart.Part], depth: int, label: Container) -> None:
        """Refuse byte ranges that, placed where their Content-Range says, hold a DICOM object.

        A reader of a 206 answer (a download manager, a range-reading viewer)
        writes each part at its offset: an object cut so that no piece shows
        a marker or a patient element followed by others is whole again. The
        parts are joined in offset order (placed at their offsets when that
        stays near the body's size) and classified; nothing can be rewritten
        in place.
        """
        ranges = sorted((start, part.content) for part in parts
                        if (start := _range_start(part.header("Content-Range"))) is not None)
        if len(ranges) < 2:
            return
        end = max(start + len(content) for start, content in ranges)
        if end <= 2 * sum(len(content) for _, content in ranges) + 64 * 1024:
            joined = bytearray(end)
            for start, content in ranges:
                joined[start:start + len(content)] = content
        else:
            joined = bytearray(b"".join(content for _, content in ranges))
        if self._finds_dicom(bytes(joined), depth, label):
            raise Blocked(BlockReason.UNPARSEABLE_DICOM, "byte ranges of a DICOM object")

    def _part_content(self, part: multipart.Part, media: MediaType, codings: list[str], depth: int,
                      label: Container, **context: bool) -> bytes:
        """A part's content: its transfer encoding undone, classified, and redone if it changed.

        Werkzeug and most web frameworks ignore Content-Transfer-Encoding and
        hand over the bytes as sent. Base64 bytes are read that way anyway (as
        a base64 run); quoted-printable ones are checked as they are too, so
        binary labelled quoted-printable cannot hide behind its decoding.
        """
        cte = transfer.transfer_encoding(part.headers)
        if cte == "quoted-printable":
            self._quoted_printable_as_sent = part.content  # its decoding is the part's reading, below
            try:
                if self._finds_dicom(part.content, depth, label):
                    raise Blocked(BlockReason.UNINSPECTABLE, "a quoted-printable part holds DICOM as sent")
            finally:
                self._quoted_printable_as_sent = None
        content = part.content if cte is None else transfer.decode_transfer(part.content, cte)
        new = self._entity(media, codings, content, depth + 1, label, **context)
        if new is content:
            return part.content
        return new if cte is None else transfer.encode_transfer(new, cte)

    def _finds_dicom(self, content: bytes, depth: int, label: Container) -> bool:
        """Whether a second reading of some bytes (as sent, the other decoding) holds DICOM.

        Only finding DICOM counts. Bytes that merely look like a compressed
        stream (quoted-printable leaves a bzip2 magic readable) and do not
        decode are no finding: a receiver reading them so gets nothing either.
        """
        try:
            return self._entity(MediaType(), [], content, depth + 1, label) is not content
        except Blocked as blocked:
            if blocked.reason is BlockReason.UNSUPPORTED_ENCODING:
                return self._finds_dicom_in_leading_stream(content, depth, label)
            if blocked.reason is BlockReason.UNPARSEABLE_DICOM:
                return True  # a DICOM marker or model in that reading: DICOM, whatever else it is
            raise

    def _finds_dicom_in_leading_stream(self, content: bytes, depth: int, label: Container) -> bool:
        """Whether a compressed stream at the start of a second reading, followed by other bytes, holds DICOM.

        As a body such a stream is refused (its tool refuses the bytes after
        it); in a reading (a lenient decoding, joined to the next one) it is
        what a carving reader decodes, to its end or its damage.
        """
        coding = encoding.body_compression(content)
        if coding is None:
            return False
        self._heavy()
        inner, _ = encoding.inflate_leading(content, coding, self._max_inflated)
        if len(inner) < textruns.MIN_BINARY_STRING:
            return False
        with self._decoded_for_real():
            return self._finds_dicom(inner, depth + 1, label)

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

    def _archive_limits(self) -> archive.ArchiveLimits:
        return archive.ArchiveLimits(self._options.max_archive_members, self._options.max_compression_ratio,
                                     self._options.max_inflated_bytes)

    def _tar(self, body: bytes, depth: int, top: bool) -> bytes:
        self._heavy()
        self._enter(Container.TAR, top)
        parsed = tarball.read_tar(body, self._archive_limits())
        before = self.findings.objects
        changed = False
        contents: list[bytes | None] = []
        for member in parsed.members:
            extras = member.extras
            if extras and self._entity(MediaType(), [], extras, depth + 1, Container.TAR) is not extras:
                changed = True  # the rebuild does not carry these records over
            if member.is_dicomdir and member.info.type in tarball.REGULAR_TYPES:
                contents.append(None)  # as in zip: DICOMDIR names every patient and is not regenerated
                changed = True
                continue
            new = self._entity(MediaType(), [], member.data, depth + 1, Container.TAR) if member.data else member.data
            changed = changed or new is not member.data
            contents.append(new)
        trailing = parsed.trailing
        new_trailing = self._entity(MediaType(), [], trailing, depth + 1, Container.TAR) if trailing else trailing
        self._mark(Container.TAR, top, found=self.findings.objects > before)
        if not changed and new_trailing is trailing:
            return body
        return tarball.rebuild_tar(parsed.members, contents) + new_trailing

    def _tar_behind_prefix(self, body: bytes, offset: int, depth: int, top: bool) -> bytes:
        """A tar after other bytes: the prefix classified, the tar read as any tar."""
        prefix, archive = body[:offset], body[offset:]
        new_prefix = self._entity(MediaType(), [], prefix, depth + 1, Container.TAR)
        new_archive = self._tar(archive, depth, top)
        if new_prefix is prefix and new_archive is archive:
            return body
        return new_prefix + new_archive

    def _zip(self, body: bytes, depth: int, top: bool) -> bytes:
        self._heavy()
        self._enter(Container.ZIP, top)
        parsed = archive.read_archive(body, self._archive_limits())
        before = self.findings.objects
        prefix, trailing = parsed.prefix, parsed.trailing
        new_prefix = self._entity(MediaType(), [], prefix, depth + 1, Container.ZIP) if prefix else prefix
        new_trailing = self._entity(MediaType(), [], trailing, depth + 1, Container.ZIP) if trailing else trailing
        for piece in parsed.metadata:  # comments and extra fields: kept byte for byte by a rebuild
            if self._finds_dicom(piece, depth, Container.ZIP):
                raise Blocked(BlockReason.UNINSPECTABLE, "DICOM in zip metadata (a comment or an extra field)")
        unlisted_changed = False
        for member in parsed.unlisted:
            data = member.data
            if data and self._entity(MediaType(), [], data, depth + 1, Container.ZIP) is not data:
                unlisted_changed = True
        replacements: dict[str, bytes | None] = {}
        for member in parsed.members:
            if member.is_dicomdir and not member.info.is_dir():
                # DICOMDIR lists names, IDs and UIDs of every patient in the archive; it is not regenerated
                replacements[member.name] = None
                continue
            if not member.data:
                continue
            new = self._entity(MediaType(), [], member.data, depth + 1, Container.ZIP)
            if new is not member.data:
                replacements[member.name] = new
        self._mark(Container.ZIP, top, found=self.findings.objects > before)
        if not (replacements or unlisted_changed or new_prefix is not prefix or new_trailing is not trailing):
            return body
        if parsed.unlisted:
            raise Blocked(BlockReason.UNINSPECTABLE,
                          "a zip entry its central directory does not list (streaming readers return it) "
                          "cannot be rebuilt faithfully")
        middle = body[len(prefix):len(body) - len(trailing)]
        if replacements:
            middle, _ = archive.rebuild_archive(parsed.members, parsed.comment,
                                                lambda m: replacements.get(m.name, m.data))
        return new_prefix + middle + new_trailing


#: a multipart delimiter line: ``--boundary`` (RFC 2046 bchars), then CRLF or LF, at the start
#: of the body or of a line within the first MULTIPART_SNIFF_BYTES (a preamble may come first)
_DELIMITER_LINE = re.compile(rb"(?:^|\n)--([0-9A-Za-z'()+_,\-./:=? ]{1,70})\r?\n")
MULTIPART_SNIFF_BYTES = 1024


def _leading_boundary(body: bytes) -> str | None:
    """The boundary of a body that is a multipart body by its shape, or None.

    A zip member, a decoded base64 value or a mislabelled upload can be a MIME
    multipart body; a receiver that knows (or guesses) the boundary finds its
    parts. The shape is strict: a delimiter line near the start (after at most
    a short preamble) and the matching close delimiter further on.
    """
    match = _DELIMITER_LINE.search(body[:MULTIPART_SNIFF_BYTES + 80])
    if match is None or not _BOUNDARY_WORD.search(match.group(1)) or b"--" + match.group(1) + b"--" not in body:
        return None
    return match.group(1).decode("ascii")


def may_open_as_multipart(prefix: bytes) -> bool:
    """Whether a body starting with ``prefix`` is a multipart body should its close delimiter follow.

    For a reader that sees a body's start before its end (the release of a
    large response): the delimiter line the whole-body walk looks for is
    there, and only the rest of the body can tell.
    """
    match = _DELIMITER_LINE.search(prefix[:MULTIPART_SNIFF_BYTES + 80])
    return match is not None and _BOUNDARY_WORD.search(match.group(1)) is not None


#: a guessed boundary holds a letter or a digit (every client's does: curl, browsers, requests);
#: a line of dashes or equals signs is a reStructuredText or Markdown rule, and text full of them
#: (documentation, docstrings) was read as a multipart body and refused as ambiguous
_BOUNDARY_WORD = re.compile(rb"[0-9A-Za-z]")


#: an element of the PS3.19 native DICOM model (optionally namespace-prefixed)
_DICOM_XML = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:NativeDicomModel|DicomAttribute)\b")


#: DCMTK's own text forms of an object, which its xml2dcm and dump2dcm write back into the file:
#: dcm2xml's ``<element tag="0010,0010" vr="PN"`` and dcmdump's ``(0010,0010) PN [...]`` lines,
#: looked for by a patient element (one search first: most text has no "0010,")
_DCMTK_GATE = b"0010,"
_DCMTK_PATIENT = re.compile(rb'<element tag="0010,[0-9A-Fa-f]{4}" vr="[A-Z]{2}"'
                            rb'|^[ \t]*\(0010,[0-9A-Fa-f]{4}\) [A-Z]{2} ', re.M)


def _dcmtk_text_form(body: bytes) -> bool:
    return _DCMTK_GATE in body and _DCMTK_PATIENT.search(body) is not None


def passes_unopened(content_type: str | None, codings: list[str], body: bytes,
                    options: PayloadOptions) -> bool:
    """Whether a whole body passes without decoding, unpacking or rewriting anything.

    The event loop asks this of bodies it holds entirely (a complete preview,
    a small body): the walk is the real one - the same classification the
    worker would make - stopped at the first step that costs more than a scan.
    Anything that stops it, or that it would refuse, goes to a worker, which
    walks it for real and gives the verdict with its report.
    """
    walker = PayloadWalker(_NO_REWRITER, options, "request", max_inflated_bytes=0, probe=True)
    try:
        return walker.rewrite_message(content_type, codings, body).body is body
    except (NeedsWork, Blocked):
        return False


class _NoRewriter:
    """The rewriter of a probing walk, which stops before any object reaches it."""

    def rewrite_dicom(self, data: bytes) -> tuple[bytes, ObjectReport]:
        raise NeedsWork

    def rewrite_json(self, dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]:
        raise NeedsWork


_NO_REWRITER = _NoRewriter()


_CONTENT_RANGE = re.compile(r"\s*bytes\s+(\d{1,15})\s*-\s*\d{1,15}\s*/", re.I)


def _range_start(value: str | None) -> int | None:
    """The first byte a part's ``Content-Range: bytes a-b/n`` places it at, or None."""
    match = _CONTENT_RANGE.match(value or "")
    return int(match.group(1)) if match else None


def _part_codings(part: multipart.Part) -> list[str]:
    return parse_encodings([v for k, v in part.headers if k.lower() == "content-encoding"])


def check_head(target: str | None, headers: Iterable[tuple[str, str]], options: PayloadOptions) -> None:
    """Raise Blocked (uninspectable) when a value of this head holds a DICOM object or its JSON model.

    ``target``: the request target as sent (None for a response head);
    ``headers``: the head's (name, value) pairs. Each long value is walked as
    a line of a body of no declared type; whatever that walk would refuse,
    or any object it finds, refuses the head.
    """
    values = head_values(target, headers)
    if values:  # one walk of all values, a line each: the walk's fixed cost is most of a short value's
        walker = PayloadWalker(_REFUSING_REWRITER, options, "request", options.max_inflated_bytes)
        walker.rewrite_message(None, [], b"\n".join(values))


class _RefusingRewriter:
    """An object found in a head value: the head cannot be rewritten in place, so it is refused."""

    def rewrite_dicom(self, data: bytes) -> tuple[bytes, ObjectReport]:
        raise Blocked(BlockReason.UNINSPECTABLE, "a DICOM object in a request target or header value")

    def rewrite_json(self, dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]:
        raise Blocked(BlockReason.UNINSPECTABLE, "a DICOM JSON dataset in a request target or header value")


_REFUSING_REWRITER = _RefusingRewriter()
