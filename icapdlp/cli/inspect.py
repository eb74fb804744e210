"""``icapdlp inspect FILE``: what the policy would do to each attribute and to the pixels, writing nothing.

Why: operators reviewing a policy want to see, per attribute, the action and
whether the value changes, and what Clean Pixel Data would do to this object
(OCR'd and what was redacted, not needed and why, or blocked and why), before
any file is produced. The object is run through the real pipeline in memory,
with the same pixel cleaner the server builds, and compared element by element
with the original; values themselves are never printed (the file holds PHI).
No key is needed: without one a throwaway key is used, since replaced UIDs
and pseudonyms are reported as "replaced", never shown.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import secrets
from pathlib import Path

import pydicom
from pydicom import Dataset

from icapdlp.cli.anonymize import build_config, is_dicom_file
from icapdlp.cli.errors import UsageError
from icapdlp.cli.options import add_config_option
from icapdlp.config import load_settings
from icapdlp.config.keys import KEY_BYTES, load_key
from icapdlp.config.schema import KeyOptions, Settings
from icapdlp.dicom.pipeline import PipelineConfig, deidentify_bytes
from icapdlp.dicom.prescan import scan
from icapdlp.dicom.profile import action_table
from icapdlp.report import ObjectReport
from icapdlp.verdict import Blocked, BlockReason


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "inspect", help="show what the policy would do to each attribute and to the pixels of a file",
        description="Print, per attribute (nested ones indented), the action the profile applies and "
        "whether the value changes, then what pixel cleaning would do. Nothing is written; values are "
        "not printed; no key is needed. Exits 1 if the server would block the object.")
    parser.add_argument("file", help="a DICOM file")
    add_config_option(parser, old_policy_flag=True)
    parser.add_argument("--key-file", metavar="FILE", help="pseudonymisation key file (optional)")
    return parser


def run(args: argparse.Namespace) -> int:
    path = Path(args.file)
    if not path.exists():
        raise UsageError(f"{args.file}: no such file; check the path")
    if path.is_dir():
        raise UsageError(f"{args.file}: is a folder; inspect takes one DICOM file (for a folder use "
                         "`icapdlp anonymize --dry-run DIR -o OUT`)")
    if not is_dicom_file(path):
        raise UsageError(f"{args.file}: not DICOM (no Part-10 header and no dataset at its start); give a "
                         "DICOM file")
    key, throwaway = _key(args)
    config, settings, _ = build_config(args, key=key, check_engines=False)
    settings = dataclasses.replace(settings, pixels=dataclasses.replace(settings.pixels, review_dir=None))
    data = path.read_bytes()
    try:
        result, pixel_block = _deidentify(data, config, settings)
        scanned = scan(data, config.limits)
    except Blocked as blocked:
        print(f"BLOCKED {blocked.reason.value}: {blocked.detail}")
        return 1
    before = pydicom.filereader.read_dataset(io.BytesIO(scanned.dataset), scanned.implicit, scanned.little_endian)
    after = pydicom.dcmread(io.BytesIO(result.data))
    for line in describe(before, after, action_table(config.profile)):
        print(line)
    findings = ", ".join(f"{k}={v}" for k, v in sorted(result.report.cdr_findings.items()))
    print(f"CDR findings: {findings or 'none'}; UIDs replaced: {result.report.uids_replaced}")
    print("Pixel cleaning: " + pixel_outcome(before, result.report, settings, pixel_block))
    if throwaway:
        print("Key: none configured; a throwaway key was used (replaced values are not shown, so nothing "
              "depends on it)")
    return 1 if pixel_block is not None else 0


def _key(args: argparse.Namespace) -> tuple[bytes, bool]:
    """The configured key, or a throwaway one when none is configured (a broken one is still an error)."""
    options = KeyOptions(file=args.key_file) if args.key_file else load_settings(args.config).key
    if options.file is None and options.hex is None:
        return secrets.token_bytes(KEY_BYTES), True
    return load_key(options), False


def _deidentify(data: bytes, config: PipelineConfig, settings: Settings):
    """The pipeline's result with the server's pixel cleaner, and the pixel block if cleaning was impossible.

    When the pixels cannot be cleaned the server blocks the object; the headers
    are then run again without the cleaner so the table can still be shown.
    """
    if not config.profile.clean_pixel_data:
        return deidentify_bytes(data, config), None
    from icapdlp.pixels import build_cleaner

    try:
        return deidentify_bytes(data, config, build_cleaner(settings)), None
    except Blocked as blocked:
        if blocked.reason is not BlockReason.PIXEL_CLEANING_IMPOSSIBLE:
            raise
        return deidentify_bytes(data, config), blocked


def pixel_outcome(before: Dataset, report: ObjectReport, settings: Settings, block: Blocked | None) -> str:
    """What Clean Pixel Data did or would do to this object, in one PHI-free sentence."""
    from icapdlp.pixels.policy import why_no_ocr

    if not settings.profile.clean_pixel_data:
        return "off (profile.clean_pixel_data = false): burned-in text is not looked for"
    if block is not None:
        return f"BLOCKED {block.reason.value} ({block.detail}): the server would block this object"
    reason = why_no_ocr(before, settings.pixels)
    if reason is not None:
        return f"not needed ({reason})"
    boxes = sum(report.boxes_by_source.values())
    sources = ", ".join(f"{k}={v}" for k, v in sorted(report.boxes_by_source.items()))
    redacted = f"{boxes} region(s) redacted ({sources})" if boxes else "no text to redact found"
    return f"OCR'd {report.frames_ocr} frame(s); {redacted}"


def describe(before: Dataset, after: Dataset | None, table, depth: int = 0) -> list[str]:
    """One line per original attribute: tag, keyword, VR, rule, outcome (UIDs: "replaced")."""
    lines = []
    for elem in before:
        tag = int(elem.tag)
        rule = "private" if elem.tag.is_private else (table.action(tag) or "-")
        kept = after is not None and tag in after
        if not kept:
            outcome = "removed"
        elif elem.VR == "SQ":
            outcome = f"sequence, {len(after[tag].value)} item(s)"
        elif after[tag].value == elem.value:
            outcome = "unchanged"
        else:
            outcome = "replaced" if elem.VR == "UI" else "changed"
        name = elem.keyword or "(unknown)"
        lines.append(f"{'  ' * depth}({elem.tag.group:04X},{elem.tag.element:04X}) {name:<40} {elem.VR:<2} "
                     f"rule={rule:<7} {outcome}")
        if elem.VR == "SQ" and kept:
            for index, item in enumerate(elem.value):
                items = after[tag].value
                lines += describe(item, items[index] if index < len(items) else None, table, depth + 1)
    return lines
