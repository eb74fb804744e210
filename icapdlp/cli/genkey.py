"""``icapdlp genkey FILE``: create a new pseudonymisation key with mode 0600."""

from __future__ import annotations

import argparse

from icapdlp.cli.errors import UsageError
from icapdlp.config.keys import fingerprint, generate_key_file, load_key
from icapdlp.config.schema import KeyOptions


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "genkey",
        help="create a new random pseudonymisation key file",
        description="Write 32 random bytes as hex to FILE (mode 0600). Refuses to overwrite: "
        "a new key changes every derived UID and pseudonym.",
    )
    parser.add_argument("file")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        generate_key_file(args.file)
    except FileExistsError:
        raise UsageError(f"{args.file}: exists; a key is never overwritten (a new key changes every derived UID "
                         "and pseudonym); choose a new file name") from None
    print(f"wrote key {args.file} (fingerprint {fingerprint(load_key(KeyOptions(file=args.file)))})")
    return 0
