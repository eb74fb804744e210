"""``icapdlp`` command: dispatch to one module per sub-command.

Sub-command modules expose ``add_parser(subparsers)`` and ``run(args) -> int``;
the server, the offline anonymiser and the config checker share one settings
loader, so what ``check-config`` accepts is exactly what ``serve`` runs.

This is also the one place where errors become what the user reads: every
user error is one line on stderr with exit status 2 (see
:mod:`icapdlp.cli.errors`), and an unexpected failure is one line naming the
exception type only (its text may quote a value read from a file), exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from icapdlp import __version__
from icapdlp.cli import anonymize, check_config, genkey, inspect, serve
from icapdlp.cli.errors import EXIT_INTERNAL, EXIT_USAGE, UsageError, os_error_line, printable
from icapdlp.errors import ConfigError

#: sub-command modules, in the order --help lists them
COMMAND_MODULES = (serve, anonymize, inspect, check_config, genkey)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (argparse prints the usage first)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="icapdlp",
        description="ICAP server that de-identifies DICOM objects crossing an HTTP proxy.",
    )
    parser.add_argument("--version", action="version", version=f"icapdlp {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        sub = module.add_parser(subparsers)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    prog = f"icapdlp {args.command}"
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except UsageError as exc:
        return _fail(prog, str(exc), EXIT_USAGE)
    except ConfigError as exc:
        return _fail(prog, str(exc), EXIT_USAGE)
    except OSError as exc:
        return _fail(prog, os_error_line(exc), EXIT_USAGE)
    except Exception as exc:  # noqa: BLE001 - the boundary: no traceback, no exception text (it may quote values)
        return _fail(prog, f"internal error ({type(exc).__name__} at {_where(exc)}); this is a bug in icapdlp, "
                     "please report it with the command you ran", EXIT_INTERNAL)


def _where(exc: BaseException) -> str:
    """``module.py:line in function`` of the innermost frame: enough for a bug report, never a value."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown location"
    frame = frames[-1]
    return f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"


def _fail(prog: str, line: str, code: int) -> int:
    print(f"{prog}: {printable(line)}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
