"""``icapdlp anonymize IN... -o OUT``: the server's pipeline, offline, over files and folders.

Why the same engine: what a site tests offline must be exactly what the proxy
does. Settings come from the same loader as ``serve``, and the same engine
checks refuse a policy whose engines cannot work; each worker process builds
its own pixel cleaner once. Folders are walked recursively and mirrored under
OUT; an OUT that is, or is inside, or contains an input is refused unless
``--in-place`` is given (:mod:`icapdlp.cli.paths`). Files the project's
sniffer does not recognise as DICOM are skipped and counted, never copied.
The exit status is non-zero when a DICOM file was blocked, so scripts cannot
mistake a partial run for a complete one. Output lines name files and
closed-set reasons only, never values from inside the objects.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from icapdlp.adaptation.worker_tasks import pipeline_config
from icapdlp.cli.errors import UsageError, printable
from icapdlp.cli.options import add_config_option
from icapdlp.cli.paths import check_output_folder, plan
from icapdlp.cli.progress import Progress
from icapdlp.config import load_settings
from icapdlp.config.keys import load_key
from icapdlp.config.schema import KeyOptions, Settings
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from icapdlp.errors import ConfigError
from icapdlp.payload.sniff import SNIFF_WINDOW, Sniff, sniff_dicom
from icapdlp.verdict import Blocked, BlockReason

#: files handed to a worker per task: amortises process round-trips on small files
CHUNK_SIZE = 4
#: outcomes of one file besides a BlockReason value
WRITTEN, WOULD_WRITE, NOT_DICOM = "written", "would write", "skipped, not DICOM"
UNREADABLE, UNWRITABLE = "unreadable-file", "write-failed"
#: skipped files named by name after a run; the rest only counted (a folder may hold thousands)
SKIPPED_LISTED = 10


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "anonymize", help="de-identify DICOM files and folders offline",
        description="De-identify DICOM files (folders recursively) into OUT with the same pipeline the "
        "server runs. Files that are not DICOM are skipped and counted. Exits 1 if a DICOM file was "
        "blocked, 2 on a usage or configuration error.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="DICOM files or folders")
    parser.add_argument("-o", "--output", metavar="OUT",
                        help="output folder (created if missing); may not be or contain an input")
    parser.add_argument("--in-place", action="store_true",
                        help="allow writing over the inputs (without -o: each file is replaced by its copy)")
    parser.add_argument("--dry-run", action="store_true",
                        help="run the pipeline and say what would be written or blocked; write nothing")
    add_config_option(parser, old_policy_flag=True)
    parser.add_argument("--key-file", metavar="FILE", help="pseudonymisation key file (overrides key.file)")
    parser.add_argument("--review", metavar="DIR", help="write pixel-redaction review images here")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    return parser


_WORKER: dict = {}


def _init_worker(config: PipelineConfig, settings: Settings, use_pixels: bool, dry_run: bool) -> None:
    """Per process: keep the config and build the pixel cleaner once."""
    _WORKER["config"] = config
    _WORKER["dry_run"] = dry_run
    _WORKER["cleaner"] = None
    if use_pixels:
        from icapdlp.pixels import build_cleaner
        _WORKER["cleaner"] = build_cleaner(settings)


def _process(pair: tuple[Path, Path]) -> tuple[str, str, str, dict]:
    """(source, destination, outcome, action counts) for one file; outcome is WRITTEN or a reason."""
    source, destination = pair
    if _WORKER["cleaner"] is not None:
        _WORKER["cleaner"].review_source = str(source)  # review images named after their source file
    try:
        if not is_dicom_file(source):
            return str(source), str(destination), NOT_DICOM, {}
        data = read_owned(source)
    except OSError:
        return str(source), str(destination), UNREADABLE, {}
    try:
        result = deidentify_bytes(data, _WORKER["config"], _WORKER["cleaner"], owned=True)
    except Blocked as blocked:
        return str(source), str(destination), blocked.reason.value, {}
    except Exception:  # noqa: BLE001 - a worker bug must not stop the batch or print values
        return str(source), str(destination), BlockReason.INTERNAL_ERROR.value, {}
    if _WORKER["dry_run"]:
        return str(source), str(destination), WOULD_WRITE, dict(result.report.actions)
    try:
        write_replacing(destination, result.write_to)
    except OSError:
        return str(source), str(destination), UNWRITABLE, {}
    return str(source), str(destination), WRITTEN, dict(result.report.actions)


def is_dicom_file(path: Path) -> bool:
    """The server's own sniffer on the file's first bytes (never the whole of a large non-DICOM file)."""
    with open(path, "rb") as handle:
        head = handle.read(SNIFF_WINDOW + 1)
    return sniff_dicom(head, complete=len(head) <= SNIFF_WINDOW) is not Sniff.NOT_DICOM


def write_replacing(destination: Path, write) -> None:
    """Write to a temporary name beside ``destination``, then rename over it.

    Why: with ``--in-place`` the destination is the input; a run stopped half
    way must leave either the original or the complete copy, never a torn file.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.icapdlp-tmp")
    try:
        with open(temporary, "wb") as handle:
            write(handle)  # the rebuilt pieces, never joined into one more full-size copy
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def read_owned(path: Path) -> bytearray:
    """The whole file in a buffer of its own, read once.

    Why a bytearray the pipeline may keep (``owned=True``): a large object is
    then held once. Its pixels stay a view of this buffer and bits above High
    Bit are zeroed in it, as the server's worker does with a spooled body.
    Bytes the file gained after its size was taken are read too.
    """
    with open(path, "rb") as handle:
        data = bytearray(os.fstat(handle.fileno()).st_size)
        del data[handle.readinto(data):]
        data += handle.read()
    return data


def build_config(args: argparse.Namespace, *, key: bytes | None = None,
                 check_engines: bool = True) -> tuple[PipelineConfig, Settings, bool]:
    """Settings + key + engine checks -> the pipeline configuration and whether pixels are cleaned.

    The engines are checked by the same function ``serve`` uses: a policy that
    cleans pixels with an engine that cannot work here stops the run (exit 2)
    instead of blocking every image. ``key`` overrides the configured key.
    """
    settings = load_settings(args.config)
    review = getattr(args, "review", None)
    if review:
        settings = dataclasses.replace(settings, pixels=dataclasses.replace(settings.pixels, review_dir=review))
    if key is None:
        key = load_key(KeyOptions(file=args.key_file) if args.key_file else settings.key)
    if check_engines:
        from icapdlp.adaptation.engines import startup_problems

        problems = startup_problems(settings)
        if problems:
            raise ConfigError(problems)
    config = pipeline_config(settings, key)
    return config, settings, settings.profile.clean_pixel_data


def run(args: argparse.Namespace) -> int:
    if args.output is None and not args.in_place:
        raise UsageError("no output folder; give -o OUT (a new or empty folder), or --in-place to replace the "
                         "input files")
    output = Path(args.output) if args.output is not None else None
    if output is not None:
        check_output_folder(output, create=False)
    pairs = plan(args.inputs, output, in_place=args.in_place)
    config, settings, use_pixels = build_config(args)
    if args.dry_run:  # nothing written: no review images either
        settings = dataclasses.replace(settings, pixels=dataclasses.replace(settings.pixels, review_dir=None))
    elif output is not None:
        check_output_folder(output, create=True)
    return _report(_run_batch(pairs, config, settings, use_pixels, args), args.dry_run,
                   None if args.dry_run else args.review)


def _run_batch(pairs, config, settings, use_pixels, args) -> tuple[list[tuple[str, str, str]], Counter, float]:
    started = time.perf_counter()
    outcomes: list[tuple[str, str, str]] = []
    actions: Counter = Counter()
    tally: Counter = Counter()
    progress = Progress(len(pairs), sys.stderr)
    jobs = max(1, min(args.jobs, len(pairs) or 1))
    try:
        with ProcessPoolExecutor(jobs, initializer=_init_worker,
                                 initargs=(config, settings, use_pixels, args.dry_run)) as pool:
            for source, destination, outcome, counts in pool.map(_process, pairs, chunksize=CHUNK_SIZE):
                outcomes.append((source, destination, outcome))
                actions.update(counts)
                kind = _kind(outcome)
                tally[kind] += 1
                if kind == "written":
                    progress.update(outcome, destination, dict(tally))
                else:
                    progress.update(outcome if kind == "skipped" else f"BLOCKED {outcome}", source, dict(tally))
    finally:
        progress.close()
    return outcomes, actions, time.perf_counter() - started


def _kind(outcome: str) -> str:
    if outcome in (WRITTEN, WOULD_WRITE):
        return "written"
    return "skipped" if outcome == NOT_DICOM else "blocked"


def _report(batch, dry_run: bool, review: str | None = None) -> int:
    outcomes, actions, elapsed = batch
    blocked = [(source, outcome) for source, _, outcome in outcomes if _kind(outcome) == "blocked"]
    skipped = [source for source, _, outcome in outcomes if outcome == NOT_DICOM]
    written = len(outcomes) - len(blocked) - len(skipped)
    if sys.stderr.isatty():  # the bar named no file: list what needs attention
        for source, reason in blocked:
            print(f"BLOCKED {reason}: {printable(source)}", file=sys.stderr)
        if skipped:
            names = ", ".join(printable(s) for s in skipped[:SKIPPED_LISTED])
            more = f" and {len(skipped) - SKIPPED_LISTED} more" if len(skipped) > SKIPPED_LISTED else ""
            print(f"skipped, not DICOM: {names}{more}", file=sys.stderr)
    rate = len(outcomes) / elapsed if elapsed > 0 else 0.0
    summary = ", ".join(f"{k}={v}" for k, v in sorted(actions.items()))
    verb = "would be written (dry run, nothing written)" if dry_run else "written"
    print(f"{written} {verb}, {len(blocked)} blocked, {len(skipped)} skipped (not DICOM), {len(outcomes)} files "
          f"in {elapsed:.1f} s ({rate:.1f} files/s); actions: {summary or 'none'}")
    if review:
        print(f"pixel review images: {Path(review).resolve()} (open index.html)")
    by_reason = Counter(reason for _, reason in blocked)
    if by_reason:
        print("blocked by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(by_reason.items())))
    if not written and not blocked:
        print("no DICOM file found in the inputs", file=sys.stderr)
    return 1 if blocked else 0
