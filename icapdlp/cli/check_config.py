"""``icapdlp check-config [--config FILE]``: print the effective settings or every problem.

Operators run this before a start or a reload: it uses the same loader and
the same engine checks as ``serve``, so a file it accepts is a file the server
starts with. Secrets are redacted. A key that ``serve`` could not load makes
it fail too (exit 2), after the settings are printed.
"""

from __future__ import annotations

import argparse
import json
import sys

from icapdlp.app.application import startup_problems
from icapdlp.cli.errors import EXIT_USAGE
from icapdlp.cli.options import add_config_option, config_path
from icapdlp.config import load_settings
from icapdlp.config.keys import fingerprint, load_key
from icapdlp.config.loader import as_dict
from icapdlp.errors import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a configuration and print the effective settings",
        description="Validate --config FILE plus ICAPDLP_* variables, the engines the policy needs and the "
        "key; print the effective settings as JSON (secrets redacted), or every problem and exit 2.",
    )
    add_config_option(parser)
    parser.add_argument("file", nargs="?", help=argparse.SUPPRESS)  # the old positional spelling
    return parser


def run(args: argparse.Namespace) -> int:
    settings = load_settings(config_path(args, args.file))
    try:
        key_note, key_problem = {"configured": True, "fingerprint": fingerprint(load_key(settings.key))}, None
    except ConfigError as exc:
        key_note, key_problem = {"configured": False, "problem": "; ".join(exc.problems)}, exc
    problems = startup_problems(settings)  # what `serve` would also refuse
    if problems:
        raise ConfigError(problems + (key_problem.problems if key_problem else []))
    print(json.dumps({"settings": as_dict(settings), "key": key_note}, indent=2, sort_keys=True))
    if key_problem is not None:  # serve would refuse to start without it
        print(f"icapdlp check-config: {key_problem}", file=sys.stderr)
        return EXIT_USAGE
    return 0
