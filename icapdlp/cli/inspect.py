"""``icapdlp inspect FILE``: what the profile would do to each attribute, without writing.

Why: operators reviewing a policy want to see, per attribute, the action and
whether the value changes, before any file is produced. The object is run
through the real pipeline in memory and compared element by element with
the original; values themselves are never printed (the file holds PHI).
"""

from __future__ import annotations

import argparse
import io
import sys

import pydicom
from pydicom import Dataset

from icapdlp.cli.anonymize import build_config
from icapdlp.config import ConfigError
from icapdlp.dicom.pipeline import deidentify_bytes
from icapdlp.dicom.prescan import scan
from icapdlp.dicom.profile import action_table
from icapdlp.verdict import Blocked


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "inspect", help="show what the profile would do to each attribute of a file",
        description="Print, per attribute (nested ones indented), the action the profile "
        "applies and whether the value changes. Nothing is written; values are not printed.")
    parser.add_argument("file", help="a DICOM file")
    parser.add_argument("--policy", metavar="FILE", help="TOML configuration (same format as serve)")
    parser.add_argument("--key-file", metavar="FILE", help="pseudonymisation key file")
    parser.set_defaults(review=None)
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        config, _settings, _pixels = build_config(args)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    data = open(args.file, "rb").read()
    try:
        result = deidentify_bytes(data, config)
        scanned = scan(data, config.limits)
    except Blocked as blocked:
        print(f"BLOCKED {blocked.reason.value}: {blocked.detail}")
        return 1
    before = pydicom.filereader.read_dataset(io.BytesIO(scanned.dataset), scanned.implicit, scanned.little_endian)
    after = pydicom.dcmread(io.BytesIO(result.data))
    table = action_table(config.profile)
    for line in describe(before, after, table):
        print(line)
    findings = ", ".join(f"{k}={v}" for k, v in sorted(result.report.cdr_findings.items()))
    print(f"CDR findings: {findings or 'none'}; UIDs replaced: {result.report.uids_replaced}")
    return 0


def describe(before: Dataset, after: Dataset | None, table, depth: int = 0) -> list[str]:
    """One line per original attribute: tag, keyword, VR, rule, outcome."""
    lines = []
    for elem in before:
        tag = int(elem.tag)
        rule = "private" if elem.tag.is_private else (table.action(tag) or "-")
        kept = after is not None and tag in after
        if not kept:
            outcome = "removed"
        elif elem.VR == "SQ":
            outcome = f"sequence, {len(after[tag].value)} item(s)"
        else:
            outcome = "unchanged" if after[tag].value == elem.value else "changed"
        name = elem.keyword or "(unknown)"
        lines.append(f"{'  ' * depth}({elem.tag.group:04X},{elem.tag.element:04X}) {name:<40} {elem.VR:<2} "
                     f"rule={rule:<7} {outcome}")
        if elem.VR == "SQ" and kept:
            for index, item in enumerate(elem.value):
                items = after[tag].value
                lines += describe(item, items[index] if index < len(items) else None, table, depth + 1)
    return lines
