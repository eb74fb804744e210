"""``icapdlp`` command: dispatch to one module per sub-command.

Sub-command modules expose ``add_parser(subparsers)`` and ``run(args) -> int``;
the server, the offline anonymiser and the config checker share one settings
loader, so what ``check-config`` accepts is exactly what ``serve`` runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from icapdlp import __version__

#: sub-command modules under icapdlp.cli, in the order --help lists them
COMMAND_MODULES = ("serve", "anonymize", "inspect", "check_config", "genkey")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="icapdlp",
        description="ICAP server that de-identifies DICOM objects crossing an HTTP proxy.",
    )
    parser.add_argument("--version", action="version", version=f"icapdlp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"icapdlp.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
