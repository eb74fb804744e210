"""What runs inside a worker process: parse, de-identify and rebuild one message body.

The event loop only moves bytes; everything that parses untrusted content
runs here, in a process the pool can kill at the deadline. Per-process state
(the settings, the key, the pixel cleaner with its OCR and NER engines) is
built once (by :func:`init_worker`, or by the first task) and found again by
the policy token; a task carries small arguments and a file path, never a
spooled body.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

from icapdlp.adaptation.splice import try_splice
from icapdlp.dicom.options import ServiceMode
from icapdlp.payload.sniff import SNIFF_WINDOW
from icapdlp.payload.triage import Verdict, triage
from icapdlp.payload.walker import Findings, PayloadWalker
from icapdlp.report import NO_WRAPPING, Container, ObjectReport
from icapdlp.transaction import TransactionReport
from icapdlp.verdict import BlockReason, Blocked



@dataclass
class WorkerState:
    settings: Any
    key: bytes
    pixel_cleaner: Any
    #: each service's pipeline configuration, as the policy built it
    pipelines: dict[str, Any]
    _cleaners: dict = field(default_factory=dict)

    def cleaner(self, service: str) -> Any:
        """The pixel cleaner of one service: the shared one, unless [services.NAME.pixels] differs."""
        if self.pixel_cleaner is None or self.settings.pixels_for(service) == self.settings.pixels:
            return self.pixel_cleaner
        if service not in self._cleaners:
            from icapdlp.pixels import build_cleaner

            self._cleaners[service] = build_cleaner(self.settings, service=service)  # engines shared per process
        return self._cleaners[service]

    def config(self, service: str) -> Any:
        """The pipeline configuration of one service; None for a block-mode service (it has no pipeline)."""
        return self.pipelines.get(service)


def pipeline_config(settings: Any, key: bytes, service: str | None = None) -> Any:
    """The one place a ``PipelineConfig`` is made: a service's (its own profile and mode), or the
    global policy's when there is no service (the offline CLI)."""
    from icapdlp.dicom.pipeline import PipelineConfig

    if service is None:
        return PipelineConfig(settings.profile, settings.dicom_limits, key)
    return PipelineConfig(settings.profile_for(service), settings.dicom_limits, key, settings.services[service].mode)


def pipeline_configs(settings: Any, key: bytes) -> dict[str, Any]:
    """Every service's pipeline configuration, built once per policy.

    A block-mode service gets none: PipelineRewriter refuses its objects first.
    """
    return {name: pipeline_config(settings, key, name)
            for name, service in settings.services.items() if service.mode is not ServiceMode.BLOCK}


@dataclass(frozen=True)
class Policy:
    """What a task needs to find (or build) its process state: sent with every task.

    Sending settings and key along (a few kilobytes through a local pipe)
    means a worker started before a configuration reload, or by a pool that
    ran no initializer, still serves the current policy instead of failing.
    """

    token: str
    settings: Any
    key: bytes
    #: :func:`pipeline_configs` of these settings and key: built with the policy, once, not per task
    pipelines: dict[str, Any] = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.pipelines is None:
            object.__setattr__(self, "pipelines", pipeline_configs(self.settings, self.key))


#: states kept per process: the current policy and a few recent ones during a reload
MAX_STATES = 4
_STATES: dict[str, WorkerState] = {}


def init_worker(policy: Policy, status_directory: str | None = None) -> None:
    """Per-process initializer: build the pixel cleaner and load the NER model once.

    Loading the model here (about a second) keeps it out of the first image's
    task deadline. An engine that fails (Tesseract missing, a model that does
    not load) is not fatal here - raising would make the pool restart workers
    in a loop: the cleaner then blocks each image that needs it
    (pixel-cleaning-impossible), and the result is recorded in
    ``status_directory`` for the server's /readyz.
    """
    worker = state(policy)
    if worker.pixel_cleaner is None:
        return
    from icapdlp.adaptation import engines

    try:
        from icapdlp.pixels import warm_up

        status = warm_up(policy.settings)
    except Exception:  # noqa: BLE001 - an engine failing to start must not crash-loop the pool
        status = dict.fromkeys(engines.ENGINES, False)
    engines.record_worker_status(status_directory, status)


def _configure_worker_logging(settings: Any) -> None:
    """A new policy (start-up or reload) in a worker process: its [logging] applies to what the worker logs.

    Not in the server process itself (an in-process pool in tests or tools): its log is the caller's.
    """
    import multiprocessing

    if multiprocessing.parent_process() is None:
        return
    from icapdlp.observability.logs import configure_logging

    configure_logging(settings.logging, process="worker")


def state(policy: Policy) -> WorkerState:
    found = _STATES.get(policy.token)
    if found is None:
        _configure_worker_logging(policy.settings)
        while len(_STATES) >= MAX_STATES:
            _STATES.pop(next(iter(_STATES)))
        found = _STATES[policy.token] = WorkerState(policy.settings, policy.key,
                                                    _build_cleaner(policy.settings), policy.pipelines)
    return found


def _build_cleaner(settings: Any) -> Any:
    """The pixel cleaner, or None when the policy never cleans pixels.

    With no cleaner and a policy that needs one, the pipeline blocks the object
    (pixel-cleaning-impossible): a missing engine never means "skip".
    """
    from icapdlp.adaptation.engines import needs_pixel_engines

    if not needs_pixel_engines(settings):
        return None
    from icapdlp.pixels import build_cleaner

    return build_cleaner(settings)


class PipelineRewriter:
    """The ObjectRewriter of one service: de-identify, block, or report only."""

    def __init__(self, worker: WorkerState, service: str) -> None:
        self._worker = worker
        self._config = worker.config(service)
        self._mode: ServiceMode = worker.settings.services[service].mode
        self._cleaner = worker.cleaner(service)

    def _refuse_in_block_mode(self) -> None:
        if self._mode is ServiceMode.BLOCK:
            raise Blocked(BlockReason.POLICY_BLOCKS_DICOM, "this service blocks DICOM objects")

    def rewrite_dicom(self, data: bytes) -> tuple[bytes, ObjectReport]:
        """The object rewritten (report-only: the pipeline answers with ``data`` itself) and the report."""
        self._refuse_in_block_mode()
        from icapdlp.dicom.pipeline import deidentify_bytes

        result = deidentify_bytes(data, self._config, pixel_cleaner=self._cleaner)
        return result.data, result.report

    def rewrite_owned_dicom(self, data: bytearray) -> tuple[Any, bool]:
        """:meth:`rewrite_dicom` for a buffer the caller gives away: (pieces, changed).

        The pipeline may zero high bits in ``data`` itself and answers with
        pieces (``DeidOutput``) that are written out without being joined, so
        a large object is held once, not three or four times.
        """
        self._refuse_in_block_mode()
        from icapdlp.dicom.pipeline import deidentify_bytes

        output = deidentify_bytes(data, self._config, pixel_cleaner=self._cleaner, owned=True)
        return output, self._mode is ServiceMode.DEIDENTIFY

    def rewrite_json(self, dataset: dict[str, Any]) -> tuple[dict[str, Any], ObjectReport]:
        self._refuse_in_block_mode()
        from pydicom import Dataset

        from icapdlp.dicom.pipeline import deidentify_dataset

        # pydicom's warnings quote element values: never let them reach a log
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                ds = Dataset.from_json(dataset)
            except RecursionError:
                raise Blocked(BlockReason.LIMIT_EXCEEDED, "DICOM JSON nested too deeply") from None
            except Exception:  # pydicom raises many types on malformed JSON values
                raise Blocked(BlockReason.UNPARSEABLE_DICOM, "DICOM JSON dataset does not decode") from None
            lent = _lend_instance_uids(ds)
            report = deidentify_dataset(ds, self._config, pixel_cleaner=self._cleaner)
            for keyword in lent:
                delattr(ds, keyword)
            if lent:
                report.instance_ref = ""  # the lent UID identifies nothing
            if self._mode is ServiceMode.REPORT_ONLY:
                return dataset, report
            try:
                return ds.to_json_dict(bulk_data_threshold=2**31), report
            except Exception:
                raise Blocked(BlockReason.UNPARSEABLE_DICOM, "dataset does not encode as JSON") from None


#: neutral SOP Class lent to JSON documents that are not instances (Secondary Capture Image Storage)
LENT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.7"
#: a syntactically valid UID that names nothing (its keyed replacement is removed again)
LENT_SOP_INSTANCE = "2.25.0"


def _lend_instance_uids(ds: Any) -> list[str]:
    """Give a non-instance JSON document the SOP UIDs the pipeline identifies objects by.

    QIDO-RS study and series matches, STOW-RS Store Instances Responses and
    similar DICOM JSON documents carry patient and study attributes but no
    SOP Class / SOP Instance UID, and the pipeline refuses a dataset without
    them. They are lent for the de-identification and removed afterwards, so
    the document is de-identified with the same profile and key as instances.
    Returns the keywords that were lent.
    """
    lent = []
    for keyword, value in (("SOPClassUID", LENT_SOP_CLASS), ("SOPInstanceUID", LENT_SOP_INSTANCE)):
        if not str(ds.get(keyword, "") or "").strip("\0 "):
            setattr(ds, keyword, value)
            lent.append(keyword)
    return lent


@dataclass
class BodyResult:
    """A rewritten body (in memory or in a temp file) and the report."""

    changed: bool
    report: TransactionReport
    data: bytes | None = None
    path: str | None = None
    size: int = 0


def rewrite_body(policy: Policy, service: str, direction: Literal["request", "response"],
                 content_type: str | None, content_encodings: list[str],
                 data: bytes | None, path: str | None, verdict: Verdict = Verdict.NEED_BODY) -> BodyResult:
    """Worker task, the one rewrite entry: find, rewrite and rebuild; Blocked propagates to the adapter.

    ``verdict``: the adapter's triage of this body. A spooled body the adapter
    could only judge by its head (NEED_BODY) is classified here, once, from its
    leading bytes. One raw object in a spool file is spliced (large, pixels kept)
    or rewritten in place; everything else goes through the payload walker.
    """
    worker = state(policy)
    if data is None:
        if path is None:
            raise Blocked(BlockReason.INTERNAL_ERROR, "body has neither data nor path")
        if verdict is Verdict.NEED_BODY:
            verdict = _classify_spooled(path, content_type, content_encodings)
        if verdict is Verdict.RAW_DICOM:
            return _splice(worker, service, path) or _rewrite_raw(
                worker, service, _read_spooled(path, worker.settings.limits.body_bytes, owned=True))
        data = _read_spooled(path, worker.settings.limits.body_bytes)
    walker = PayloadWalker(PipelineRewriter(worker, service), worker.settings.payload, direction,
                           max_inflated_bytes=worker.settings.limits.body_bytes,
                           pass_uninspectable=worker.settings.services[service].uninspectable == "pass")
    try:
        result = walker.rewrite_message(content_type, content_encodings, data)
    except Blocked as blocked:  # named after what was being walked, for metrics and the audit
        raise Blocked(blocked.reason, blocked.detail, walker.findings.entered) from None
    except RecursionError:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "structure nested too deeply") from None
    except MemoryError:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "body too large to process in memory") from None
    report = to_transaction_report(result.findings)
    if not result.changed:
        return BodyResult(False, report)
    limits = worker.settings.limits
    if len(result.body) > limits.spool_memory_bytes:
        out_path = _write_temp(result.body, limits.spool_dir)
        return BodyResult(True, report, path=out_path, size=len(result.body))
    return BodyResult(True, report, data=result.body, size=len(result.body))


def _classify_spooled(path: str, content_type: str | None, content_encodings: list[str]) -> Verdict:
    """The triage of a spooled body from its leading bytes: as far as sniffing ever looks, no further."""
    try:
        with open(path, "rb") as handle:
            prefix = handle.read(SNIFF_WINDOW + 1)
    except OSError as exc:
        raise Blocked(BlockReason.SPOOL_FAILED, f"cannot read spooled body ({exc.strerror})") from None
    return triage(content_type, content_encodings, prefix, len(prefix) <= SNIFF_WINDOW).verdict


def _rewrite_raw(worker: WorkerState, service: str, data: bytearray) -> BodyResult:
    """One raw object from a spooled body, held once: masked in place, written out in pieces.

    The walker would give the same bytes and report (one "raw" object) but
    needs one bytes object per level: the parsed pixels, a masked copy and
    the joined output each cost the object's size again.
    """
    try:
        output, changed = PipelineRewriter(worker, service).rewrite_owned_dicom(data)
    except Blocked as blocked:
        raise Blocked(blocked.reason, blocked.detail, Container.RAW.value) from None
    except RecursionError:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "structure nested too deeply") from None
    except MemoryError:
        raise Blocked(BlockReason.LIMIT_EXCEEDED, "body too large to process in memory") from None
    report = raw_transaction_report(output.report)
    if not changed:
        return BodyResult(False, report)
    limits = worker.settings.limits
    size = output.size
    if size > limits.spool_memory_bytes:
        return BodyResult(True, report, path=_write_temp_chunks(output.chunks, limits.spool_dir), size=size)
    return BodyResult(True, report, data=output.data, size=size)


def raw_transaction_report(report: ObjectReport) -> TransactionReport:
    """The report of a body that is one raw DICOM object, as the walker would give it."""
    findings = Findings()
    findings.add(Container.RAW, report)
    findings.wrapping = Container.RAW.value
    return to_transaction_report(findings)


def _splice(worker: WorkerState, service: str, path: str) -> BodyResult | None:
    """A large raw object whose pixels pass as they are: new header + streamed pixels (None: not spliced)."""
    if worker.settings.services[service].mode is not ServiceMode.DEIDENTIFY:
        return None
    size = os.path.getsize(path)
    answer = try_splice(path, size, worker.config(service), worker.cleaner(service), worker.settings.limits.spool_dir)
    if answer is None:
        return None
    out, object_report = answer
    return BodyResult(True, raw_transaction_report(object_report), path=out, size=os.path.getsize(out))


def header_only(policy: Policy, service: str, prefix: bytes, total_size: int
                ) -> tuple[bytes, int, TransactionReport] | None:
    """Worker task for ICAP 206: (new prefix, offset into the original body, report) or None.

    The report counts the header rewrite like a full rewrite's (actions,
    UIDs, findings, skipped frames, trace refs), so objects answered with 206
    are in the metrics and the audit log like any other.
    """
    worker = state(policy)
    from icapdlp.dicom.pipeline import header_only_rewrite

    answer = header_only_rewrite(prefix, total_size, worker.config(service),
                                             pixel_cleaner=worker.cleaner(service))
    if answer is None:
        return None
    new_prefix, offset, report = answer
    return new_prefix, offset, raw_transaction_report(report)


def blocked_report(blocked: Blocked) -> TransactionReport:
    """The report of a body a worker blocked: its wrapping, and one object when it was one object."""
    wrapping = blocked.wrapping or NO_WRAPPING
    objects = {wrapping: 1} if wrapping.endswith(Container.RAW.value) else {}
    return TransactionReport(objects_by_wrapping=objects, wrapping=wrapping)


def to_transaction_report(findings: Findings) -> TransactionReport:
    return TransactionReport(objects_by_wrapping=dict(findings.objects_by_wrapping), totals=findings.totals,
                             study_refs=list(findings.study_refs), instance_refs=list(findings.instance_refs),
                             wrapping=findings.wrapping)


def _read_spooled(path: str | None, limit: int, *, owned: bool = False) -> bytes | bytearray:
    """The spooled body; ``owned``: as a bytearray read in place (no second copy), for in-place work."""
    if path is None:
        raise Blocked(BlockReason.INTERNAL_ERROR, "body has neither data nor path")
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > limit:
                raise Blocked(BlockReason.LIMIT_EXCEEDED, f"body exceeds {limit} bytes")
            if not owned:
                data = handle.read(size + 1)  # sized by the file, not by the (2 GiB) limit
            else:
                data = bytearray(size)
                if handle.readinto(data) != size:
                    raise Blocked(BlockReason.SPOOL_FAILED, "spooled body changed while read")
    except OSError as exc:
        raise Blocked(BlockReason.SPOOL_FAILED, f"cannot read spooled body ({exc.strerror})") from None
    if len(data) != size:
        raise Blocked(BlockReason.SPOOL_FAILED, "spooled body changed while read")
    return data


def _write_temp(data: bytes, directory: str | None) -> str:
    return _write_temp_chunks([data], directory)


def _write_temp_chunks(chunks: list, directory: str | None) -> str:
    """A new temp file holding the pieces in order (the server streams it, then deletes it)."""
    path = None
    try:
        fd, path = tempfile.mkstemp(prefix="icapdlp-out-", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
    except OSError as exc:
        if path is not None:
            _unlink_quietly(path)
        raise Blocked(BlockReason.SPOOL_FAILED, f"cannot write rewritten body ({exc.strerror})") from None
    return path


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
