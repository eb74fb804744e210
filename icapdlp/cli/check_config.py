"""``icapdlp check-config FILE``: print the effective settings or every problem.

Operators run this before a reload: it uses the same loader as ``serve``, so a
file it accepts is a file the server accepts. Secrets are redacted.
"""

from __future__ import annotations

import argparse
import json
import sys

from icapdlp.config import ConfigError, load_settings
from icapdlp.config.keys import fingerprint, load_key
from icapdlp.config.loader import as_dict
from icapdlp.server.app import startup_problems


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a configuration file and print the effective settings",
        description="Validate FILE plus ICAPDLP_* variables; print the effective settings "
        "as JSON (secrets redacted) or every invalid key with its reason.",
    )
    parser.add_argument("file", nargs="?", help="TOML configuration file (default: built-in policy)")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.file)
        problems = startup_problems(settings)  # what `serve` would also refuse
        if problems:
            raise ConfigError(problems)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    effective = as_dict(settings)
    try:
        key_note = {"configured": True, "fingerprint": fingerprint(load_key(settings.key))}
    except ConfigError as exc:
        key_note = {"configured": False, "problem": exc.problems[0]}
    print(json.dumps({"settings": effective, "key": key_note}, indent=2, sort_keys=True))
    return 0
