"""``icapdlp anonymize IN... -o OUT``: the server's pipeline, offline, over files and folders.

Why the same engine: what a site tests offline must be exactly what the proxy
does. Settings come from the same loader as ``serve``; each worker process
builds its own pixel cleaner once. Folders are walked recursively and mirrored
under OUT. The exit status is non-zero when anything was blocked, so scripts
cannot mistake a partial run for a complete one. Output lines name files and
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

from icapdlp.config import ConfigError, load_settings
from icapdlp.config.keys import load_key
from icapdlp.config.schema import KeyOptions, Settings
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_buffer
from icapdlp.verdict import Blocked, BlockReason

#: files handed to a worker per task: amortises process round-trips on small files
CHUNK_SIZE = 4


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "anonymize", help="de-identify DICOM files and folders offline",
        description="De-identify DICOM files (folders recursively) into OUT with the same "
        "pipeline the server runs. Exits 1 if any file was blocked.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="DICOM files or folders")
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder")
    parser.add_argument("--policy", metavar="FILE", help="TOML configuration (same format as serve)")
    parser.add_argument("--key-file", metavar="FILE", help="pseudonymisation key file (overrides key.file)")
    parser.add_argument("--review", metavar="DIR", help="write pixel-redaction review images here")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes")
    return parser


def collect(inputs: list[str], output: Path) -> list[tuple[Path, Path]]:
    """(source, destination) pairs; folders mirrored below OUT, files placed in OUT."""
    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        root = Path(item)
        if root.is_dir():
            for path in sorted(p for p in root.rglob("*") if p.is_file()):
                pairs.append((path, output / path.relative_to(root)))
        elif root.is_file():
            pairs.append((root, output / root.name))
        else:
            raise FileNotFoundError(item)
    return pairs


_WORKER: dict = {}


def _init_worker(config: PipelineConfig, settings: Settings, use_pixels: bool) -> None:
    """Per process: keep the config and build the pixel cleaner once."""
    _WORKER["config"] = config
    _WORKER["cleaner"] = None
    if use_pixels:
        from icapdlp.pixels import build_cleaner
        _WORKER["cleaner"] = build_cleaner(settings)


def _process(pair: tuple[Path, Path]) -> tuple[str, str | None, dict]:
    source, destination = pair
    if _WORKER["cleaner"] is not None:
        _WORKER["cleaner"].review_source = str(source)  # review images named after their source file
    try:
        result = deidentify_buffer(read_owned(source), _WORKER["config"], _WORKER["cleaner"], owned=True)
    except Blocked as blocked:
        return str(source), blocked.reason.value, {}
    except OSError:
        return str(source), "unreadable-file", {}
    except Exception:  # noqa: BLE001 - a worker bug must not stop the batch or print values
        return str(source), BlockReason.INTERNAL_ERROR.value, {}
    destination.parent.mkdir(parents=True, exist_ok=True)
    with open(destination, "wb") as handle:
        result.write_to(handle)  # the rebuilt pieces, never joined into one more full-size copy
    return str(source), None, dict(result.report.actions)


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


def build_config(args: argparse.Namespace) -> tuple[PipelineConfig, Settings, bool]:
    """Settings + key + pixel cleaner availability -> the pipeline configuration."""
    settings = load_settings(args.policy)
    if args.review:
        settings = dataclasses.replace(settings, pixels=dataclasses.replace(settings.pixels, review_dir=args.review))
    key = load_key(KeyOptions(file=args.key_file) if args.key_file else settings.key)
    profile = settings.profile
    use_pixels = False
    if profile.clean_pixel_data:
        try:
            import icapdlp.pixels as pixels
            use_pixels = hasattr(pixels, "build_cleaner")
        except ImportError:
            use_pixels = False
        if not use_pixels:
            print("WARNING: burned-in text redaction is NOT available; Clean Pixel Data is OFF for "
                  "this run. Pixel data may still show names burned into the image.", file=sys.stderr)
            profile = dataclasses.replace(profile, clean_pixel_data=False)
    config = PipelineConfig(profile=profile, limits=settings.dicom_limits, key=key)
    return config, settings, use_pixels


def run(args: argparse.Namespace) -> int:
    try:
        config, settings, use_pixels = build_config(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    output = Path(args.output)
    try:
        pairs = collect(args.inputs, output)
    except FileNotFoundError as exc:
        print(f"no such file or folder: {exc}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    blocked: list[tuple[str, str]] = []
    actions: Counter = Counter()
    tty = sys.stderr.isatty()
    jobs = max(1, min(args.jobs, len(pairs) or 1))
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(config, settings, use_pixels)) as pool:
        for done, (source, reason, counts) in enumerate(pool.map(_process, pairs, chunksize=CHUNK_SIZE), 1):
            if reason:
                blocked.append((source, reason))
            actions.update(counts)
            if tty:
                print(f"\r[{done}/{len(pairs)}] blocked: {len(blocked)}", end="", file=sys.stderr, flush=True)
    if tty:
        print(file=sys.stderr)
    elapsed = time.perf_counter() - started
    for source, reason in blocked:
        print(f"BLOCKED {reason}: {source}", file=sys.stderr)
    written = len(pairs) - len(blocked)
    rate = len(pairs) / elapsed if elapsed > 0 else 0.0
    summary = ", ".join(f"{k}={v}" for k, v in sorted(actions.items()))
    print(f"{written} written, {len(blocked)} blocked, {len(pairs)} files in {elapsed:.1f} s "
          f"({rate:.1f} files/s); actions: {summary or 'none'}")
    if args.review:
        print(f"pixel review images: {Path(args.review).resolve()} (open index.html)")
    by_reason = Counter(reason for _, reason in blocked)
    if by_reason:
        print("blocked by reason: " + ", ".join(f"{k}={v}" for k, v in sorted(by_reason.items())))
    return 1 if blocked else 0
