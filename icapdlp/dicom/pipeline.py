"""The DICOM pipeline: bytes + policy + key -> de-identified bytes + report, or Blocked.

Stages: bounded pre-scan (limits, where the dataset ends) -> pydicom parse of
only the scanned bytes -> optional pixel cleaning on the ORIGINAL dataset ->
header de-identification at every depth -> markers -> clean rebuild. It never
sees ICAP or HTTP types, so the server, the CLI and the tests all drive it
the same way. Every failure leaves as ``Blocked(reason, PHI-free detail)``;
no exception text from a parser is ever passed on, since it may quote values.
Output is deterministic for the same input, policy and key.
"""

from __future__ import annotations

import io
import logging
import struct
import time
import warnings
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID

from icapdlp.dicom import keyed
from icapdlp.dicom.codestream import strip_frame_metadata
from icapdlp.dicom.conformance import (
    enforce_pixel_geometry,
    enforce_value_conformance,
    expected_pixel_bytes,
)
from icapdlp.dicom.deid import HeaderDeidentifier
from icapdlp.dicom.nested import block_nested_objects
from icapdlp.dicom.options import DicomLimits, ProfileOptions, ServiceMode
from icapdlp.dicom.pixel_cost import check_decode_cost
from icapdlp.dicom.pixel_hook import PixelCleaner, frame_count
from icapdlp.dicom.prescan import EXPLICIT_LE, IMPLICIT_LE, PIXEL_DATA, UNDEFINED, scan
from icapdlp.dicom.reader import parse, read
from icapdlp.dicom.rebuild import (
    add_markers,
    encode,
    encode_chunks,
    new_file_meta,
    output_transfer_syntax,
    zero_bits_above_high_bit,
)
from icapdlp.report import CdrFinding, ObjectReport, Stage
from icapdlp.verdict import Blocked, BlockReason

# pydicom's log and warning messages can quote element values (PHI): silence them.
logging.getLogger("pydicom").setLevel(logging.CRITICAL)

#: Encapsulated PDF, CDA, STL, OBJ, MTL: whole documents inside DICOM
ENCAPSULATED_DOCUMENT_CLASSES = frozenset(
    f"1.2.840.10008.5.1.4.1.1.104.{n}" for n in range(1, 6))
#: Basic Voice Audio and General Audio Waveform: recorded speech
AUDIO_WAVEFORM_CLASSES = frozenset({"1.2.840.10008.5.1.4.1.1.9.4.1", "1.2.840.10008.5.1.4.1.1.9.4.2"})
WAVEFORM_SEQUENCE, WAVEFORM_DATA = 0x54000100, 0x54001010
#: Float Pixel Data, Double Float Pixel Data, Pixel Data
PIXEL_VALUE_TAGS = (0x7FE00008, 0x7FE00009, PIXEL_DATA)
#: File-set ID and Directory Record Sequence: Type 2 in the Basic Directory IOD, only DICOMDIRs have them
DICOMDIR_TAGS = (0x00041130, 0x00041220)


@dataclass(frozen=True)
class PipelineConfig:
    """What the pipeline needs: the profile, the parser limits and the key.

    ``mode``: report-only answers with the input (after the whole pipeline ran,
    for the report). A block-mode service never reaches the pipeline.
    """

    profile: ProfileOptions
    limits: DicomLimits
    key: bytes
    mode: ServiceMode = ServiceMode.DEIDENTIFY

    def __post_init__(self) -> None:
        object.__setattr__(self, "mode", ServiceMode(self.mode))
        if self.mode is ServiceMode.BLOCK:
            raise ValueError("a block-mode service has no pipeline")


@dataclass
class DeidOutput:
    """The rebuilt object as pieces (header, Pixel Data element header, pixel value) and the report.

    Why pieces: the pixel value is most of a large object, and joining the
    pieces into one bytes object is a full-size copy. A caller that writes
    the object to a file uses :meth:`write_to` and never makes it; ``data``
    joins them for callers that need one bytes object. In report-only mode
    the single piece is the original input.
    """

    chunks: list
    report: ObjectReport

    @property
    def size(self) -> int:
        return sum(memoryview(chunk).nbytes for chunk in self.chunks)

    @property
    def data(self) -> bytes:
        if len(self.chunks) == 1 and isinstance(self.chunks[0], bytes):
            return self.chunks[0]
        return b"".join(self.chunks)

    def write_to(self, handle) -> None:
        for chunk in self.chunks:
            handle.write(chunk)


def deidentify_bytes(data: bytes | bytearray, config: PipelineConfig,
                     pixel_cleaner: PixelCleaner | None = None, *, owned: bool = False) -> DeidOutput:
    """De-identify one DICOM object (Part-10 or bare dataset); raise Blocked if impossible.

    The answer is in pieces (``.data`` joins them only when asked). ``owned``:
    the caller gives ``data`` away (a bytearray it will not use again, e.g. the
    worker's copy of a spooled body), so bits above High Bit are zeroed in that
    buffer instead of in a new one. Never in report-only mode, which answers
    with the input itself.
    """
    report = ObjectReport()
    owned = owned and config.mode is ServiceMode.DEIDENTIFY
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds, ts = _guarded(Stage.PARSE, parse, data, config.limits, report)
        _guarded(Stage.DEID, _process, ds, config, pixel_cleaner, report)
        out_ts = output_transfer_syntax(str(ds.file_meta.TransferSyntaxUID))
        chunks = _guarded(Stage.ENCODE, _encode, ds, out_ts, owned, report)
    return DeidOutput([data] if config.mode is ServiceMode.REPORT_ONLY else chunks, report)


def deidentify_dataset(ds: Dataset, config: PipelineConfig, pixel_cleaner: PixelCleaner | None = None
                       ) -> ObjectReport:
    """De-identify a Dataset in place (DICOM JSON from the payload layer); raise Blocked."""
    report = ObjectReport()
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = UID(EXPLICIT_LE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _guarded(Stage.DEID, _process_document, ds, config, pixel_cleaner, report)
        ts = str(ds.file_meta.TransferSyntaxUID)
        _clear_high_bits(ds, UID(ts).is_encapsulated, report)
        ds.file_meta = new_file_meta(ds, ts)
    return report


def header_only_rewrite(prefix: bytes, total_size: int, config: PipelineConfig,
                        pixel_cleaner: PixelCleaner | None = None) -> tuple[bytes, int, ObjectReport] | None:
    """For ICAP 206: rewrite only the header of a large object whose pixels can pass as is.

    Returns ``(new_prefix, offset, report)``: ``new_prefix`` ends with a Pixel
    Data element header, and the original bytes from ``offset`` (the Pixel
    Data value) to the end complete the object; ``report`` counts what the
    header rewrite did, like the full path's report, so metrics and audit see
    these objects too. Returns None whenever the full path is needed: header
    not wholly in ``prefix``, pixels that need cleaning, encapsulated / Big
    Endian / Deflated data, unused high bits (they cannot be zeroed here),
    Pixel Data whose length is not its geometry, or anything after the Pixel Data.
    """
    limits = config.limits
    if total_size > limits.max_object_bytes or config.mode is not ServiceMode.DEIDENTIFY:
        return None
    report = ObjectReport()
    started = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scanned = scan(prefix, limits, allow_truncated_pixels=True)
            pixel = scanned.pixel
            if (pixel is None or pixel.length == UNDEFINED or scanned.dataset_offset is None
                    or scanned.transfer_syntax not in (IMPLICIT_LE, EXPLICIT_LE)):
                return None
            value_offset = scanned.dataset_offset + pixel.value_offset
            if value_offset + pixel.length != total_size:
                return None  # trailing bytes after the pixels must be dropped: full path
            ds = read(io.BytesIO(bytes(scanned.dataset[:pixel.header_offset])), scanned.implicit,
                       scanned.little_endian, scanned.transfer_syntax, pixel.header_offset)
            if int(ds.get("BitsStored", 0) or 0) != int(ds.get("BitsAllocated", 0) or 0):
                return None
            if pixel.length != expected_pixel_bytes(ds):
                return None  # pixels that do not match the geometry are cut or blocked: full path
            if _sop_class(ds) in ENCAPSULATED_DOCUMENT_CLASSES | AUDIO_WAVEFORM_CLASSES:
                return None
            if config.profile.clean_pixel_data and pixel_cleaner is not None:
                if pixel_cleaner.needs_cleaning(ds):
                    return None
                report.frames_skipped += frame_count(ds)
            _process(ds, config, None, report)  # no cleaner: the pixels were just found not to need one
            header = encode(ds, scanned.transfer_syntax)
    except (Blocked, Exception):  # noqa: BLE001 - any doubt means "use the full path"
        return None
    report.stage_seconds[Stage.DEID] += time.perf_counter() - started
    if scanned.implicit:
        element = struct.pack("<HHI", 0x7FE0, 0x0010, pixel.length)
    else:
        element = struct.pack("<HH2sHI", 0x7FE0, 0x0010, pixel.vr, 0, pixel.length)
    return header + element, value_offset, report


# -- stages -------------------------------------------------------------------

def _guarded(stage: Stage, func, *args):
    """Run a stage; time it; turn any non-Blocked failure into a PHI-free Blocked."""
    report: ObjectReport = args[-1]
    started = time.perf_counter()
    try:
        return func(*args)
    except Blocked:
        raise
    except RecursionError:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, f"{stage}: nesting too deep") from None
    except MemoryError:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, f"{stage}: out of memory") from None
    except Exception as exc:  # noqa: BLE001 - parser errors may quote values; keep only the type
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, f"{stage} failed ({type(exc).__name__})") from None
    finally:
        report.stage_seconds[stage] += time.perf_counter() - started


def _process_document(ds: Dataset, config: PipelineConfig, pixel_cleaner: PixelCleaner | None,
                      report: ObjectReport) -> None:
    """:func:`_process` for a DICOM JSON document (WADO-RS metadata, QIDO-RS, STOW-RS JSON).

    Such a document describes an image without carrying its pixels (its Pixel
    Data, if named at all, was a BulkDataURI, which the payload layer removes):
    there is nothing to clean and nothing to leak, so it is de-identified like
    any header instead of being blocked. Inline pixels (InlineBinary) are
    cleaned as in a binary object.
    """
    _process(ds, config, pixel_cleaner, report, document=True)


def _process(ds: Dataset, config: PipelineConfig, pixel_cleaner: PixelCleaner | None,
             report: ObjectReport, *, document: bool = False) -> None:
    """Policy checks, pixel cleaning (on the original), header de-identification, markers."""
    profile = config.profile
    if any(tag in ds for tag in DICOMDIR_TAGS):
        raise Blocked(BlockReason.DICOMDIR, "DICOMDIR media directory (lists every patient on the medium)")
    sop_class = _sop_class(ds)
    if not sop_class or not _sop_instance(ds):
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "no SOP Class UID or SOP Instance UID")
    report.study_ref = keyed.trace_ref(config.key, str(ds.get("StudyInstanceUID", "") or ""))
    report.instance_ref = keyed.trace_ref(config.key, str(ds.get("SOPInstanceUID", "") or ""))
    enforce_value_conformance(ds, report)
    enforce_pixel_geometry(ds, UID(str(ds.file_meta.TransferSyntaxUID)).is_encapsulated, report)
    if sop_class in ENCAPSULATED_DOCUMENT_CLASSES | AUDIO_WAVEFORM_CLASSES:
        if profile.encapsulated_documents == "block":
            raise Blocked(BlockReason.ENCAPSULATED_DOCUMENT, "encapsulated document or audio refused by policy")
        _silence_audio(ds, report)
    if profile.clean_pixel_data and pixel_cleaner is not None:
        if not pixel_cleaner.needs_cleaning(ds):
            report.frames_skipped += _skipped_frames(pixel_cleaner, ds)
        elif not _has_pixels(ds):
            if not document:  # an image whose pixels are elsewhere or lost cannot be checked
                raise Blocked(BlockReason.MISSING_PIXEL_DATA, "image object without Pixel Data")
        else:
            if isinstance(ds.get_item(PIXEL_DATA).value if PIXEL_DATA in ds else None, memoryview):
                ds[PIXEL_DATA]._value = bytes(ds[PIXEL_DATA].value)  # the cleaner decodes bytes
            if PIXEL_DATA in ds:  # whatever cleaner runs, a decode it cannot afford never starts
                encapsulated = UID(str(ds.file_meta.TransferSyntaxUID)).is_encapsulated
                check_decode_cost(ds, config.limits, encapsulated)
                _clear_high_bits(ds, encapsulated, report)  # the cleaner sees (and writes) the image only
            pixel_cleaner.clean(ds, report)
    deid = HeaderDeidentifier(profile, config.key, report)
    deid.prepare(ds)
    deid.walk(ds)
    strip_frame_metadata(ds, report)
    block_nested_objects(ds)
    if not _sop_instance(ds):  # under Retain UIDs a value that is no UID is removed, not kept
        raise Blocked(BlockReason.UNPARSEABLE_DICOM, "SOP Instance UID is not a valid UID")
    add_markers(ds, profile, pixels_cleaned=report.pixels_cleaned)


def _has_pixels(ds: Dataset) -> bool:
    """Whether ``ds`` carries pixel values (Pixel Data, Float or Double Float Pixel Data)."""
    for tag in PIXEL_VALUE_TAGS:
        if tag in ds:
            value = ds.get_item(tag).value
            if value is not None and len(value):
                return True
    return False


def _skipped_frames(pixel_cleaner: PixelCleaner, ds: Dataset) -> int:
    """Frames the cleaner's policy leaves unexamined (every frame if the cleaner cannot say)."""
    skipped = getattr(pixel_cleaner, "skipped_frames", None)
    if callable(skipped):
        return int(skipped(ds))
    return frame_count(ds) if "PixelData" in ds else 0


def _silence_audio(ds: Dataset, report: ObjectReport) -> None:
    """Audio waveforms are replaced by silence of the same length (D)."""
    for item in ds.get(WAVEFORM_SEQUENCE, None) and ds[WAVEFORM_SEQUENCE].value or ():
        if WAVEFORM_DATA in item and item[WAVEFORM_DATA].value:
            item[WAVEFORM_DATA].value = bytes(len(item[WAVEFORM_DATA].value))
            report.actions["D"] += 1


def _encode(ds: Dataset, out_ts: str, owned: bool, report: ObjectReport) -> list:
    _clear_high_bits(ds, UID(out_ts).is_encapsulated, report, in_place=True, owned=owned)
    return encode_chunks(ds, out_ts)


def _clear_high_bits(ds: Dataset, encapsulated: bool, report: ObjectReport, *, in_place: bool = False,
                     owned: bool = False) -> None:
    """Zero native Pixel Data's bits above High Bit (embedded overlays hide there), counted once.

    Run before pixel cleaning, so the cleaner works on the image alone, and
    again when encoding (a no-op if already clean): the finding is counted the
    same with pixel cleaning on or off.
    """
    if zero_bits_above_high_bit(ds, encapsulated, in_place=in_place, owned=owned):
        report.cdr_findings[CdrFinding.PIXEL_HIGH_BITS] += 1


def _sop_instance(ds: Dataset) -> str:
    return str(ds.get("SOPInstanceUID", "") or "").strip("\0 ")


def _sop_class(ds: Dataset) -> str:
    return str(ds.get("SOPClassUID", "") or "").strip("\0 ")
