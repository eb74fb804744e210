"""Options every sub-command spells the same way.

One ``--config FILE`` for every command (``serve`` always had it). The old
spellings (``--policy`` for anonymize and inspect, a positional FILE for
check-config) still work, hidden from --help, for one release.
"""

from __future__ import annotations

import argparse

from icapdlp.cli.errors import UsageError

CONFIG_HELP = "TOML configuration (default: ICAPDLP_CONFIG or the built-in default policy)"


def add_config_option(parser: argparse.ArgumentParser, *, old_policy_flag: bool = False) -> None:
    parser.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    if old_policy_flag:  # deprecated spelling, kept for one release
        parser.add_argument("--policy", dest="config", metavar="FILE", help=argparse.SUPPRESS)


def config_path(args: argparse.Namespace, positional: str | None = None) -> str | None:
    """The one configuration path, from ``--config`` or an old positional FILE (not both, unless equal)."""
    if positional and args.config and positional != args.config:
        raise UsageError(f"two configuration files given ({positional} and --config {args.config}); give one "
                         "with --config")
    return args.config or positional
