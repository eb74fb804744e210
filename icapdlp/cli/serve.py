"""``icapdlp serve [--config FILE]``: run the ICAP server until SIGTERM.

Exit codes: 0 after a clean stop, 2 for an invalid configuration or key (or a
configured ``pixels.ner_model`` that is not installed while a profile cleans pixels),
1 when start-up fails otherwise (for example the port is taken).
"""

from __future__ import annotations

import argparse
import logging
import sys

from icapdlp import __version__
from icapdlp.app import application, lifecycle
from icapdlp.config import load_settings
from icapdlp.config.keys import fingerprint, load_key
from icapdlp.errors import ConfigError
from icapdlp.observability.logs import configure_logging

EXIT_CONFIG = 2
EXIT_STARTUP = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve", help="run the ICAP server",
        description="Serve ICAP (REQMOD/RESPMOD) with the configured policy until SIGTERM; "
        "SIGHUP reloads the configuration file.")
    parser.add_argument("--config", metavar="FILE", help="TOML configuration (default: ICAPDLP_CONFIG "
                        "or the built-in default policy)")
    return parser


def run(args: argparse.Namespace) -> int:
    configure_logging()
    log = logging.getLogger("icapdlp.server")
    try:
        settings = load_settings(args.config)
        configure_logging(settings.logging)
        problems = application.startup_problems(settings)
        if problems:  # e.g. a pixels.ner_model that is not installed: refuse now, not per image
            raise ConfigError(problems)
        key = load_key(settings.key)
    except ConfigError as exc:
        print(f"icapdlp serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    app = application.App(settings, key, application.adapter_factory(), config_path=args.config)

    def started() -> None:
        server = app.server
        services = ", ".join(f"/{name} ({svc.method})" for name, svc in sorted(settings.services.items()))
        tls = f", icaps port {server.tls_port}" if server.tls_port else ""
        metrics = f"http://{app.metrics_address}/metrics" if app.metrics_address else "off"
        log.info("icapdlp %s serving icap://%s:%d%s services %s metrics %s ISTag %s acceptors %d workers %d "
                 "key %s", __version__, settings.server.host, server.port, tls, services, metrics, app.istag,
                 app.acceptors, app.pool.size if app.pool else 0, fingerprint(key))

    try:
        lifecycle.run(app, on_started=started, reload=app.reload)
    except ConfigError as exc:
        print(f"icapdlp serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (OSError, RuntimeError) as exc:
        print(f"icapdlp serve: start-up failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_STARTUP
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run ``serve`` alone (used by the test helper, independent of the other sub-commands)."""
    parser = argparse.ArgumentParser(prog="icapdlp serve")
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_parser(subparsers)
    return run(parser.parse_args(["serve", *(argv if argv is not None else sys.argv[1:])]))


if __name__ == "__main__":
    sys.exit(main())
