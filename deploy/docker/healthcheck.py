"""The image's HEALTHCHECK: healthy only while icapdlp's ``/readyz`` answers 200.

``/healthz`` only says the event loop runs; ``/readyz`` says icapdlp can do
its job (workers up, policy loaded, OCR and NER usable). A container marked
healthy while ``/readyz`` failed let compose start Squid against it. The
address comes from icapdlp's own configuration, read the way ``icapdlp
serve`` reads it (``ICAPDLP_CONFIG`` plus ``ICAPDLP_*`` variables), so a
policy that moves the metrics listener moves the probe with it.

Exit 0 when ready, 1 otherwise (Docker's convention); one line on stderr says
why. Slim images have no curl: the standard library is enough.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

#: seconds for the whole probe; the Dockerfile's HEALTHCHECK --timeout is longer
TIMEOUT = 4.0
#: a wildcard listen address is probed on the loopback address of its family
WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def readyz_url(settings) -> str | None:
    """The /readyz URL of the configured metrics listener, or None when it is disabled."""
    options = settings.metrics
    if not options.enabled:
        return None
    host = WILDCARDS.get(options.host, options.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{options.port}/readyz"


def probe(url: str, timeout: float = TIMEOUT) -> tuple[bool, str]:
    """(ready, reason) from one GET of ``url``."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200, f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:  # 503: not ready (the body lists the failing checks)
        return False, f"HTTP {exc.code}: {exc.read(2048).decode('utf-8', 'replace').strip()}"
    except (OSError, ValueError) as exc:
        return False, f"{type(exc).__name__}: {exc}"


def main() -> int:
    from icapdlp.config import load_settings
    from icapdlp.errors import ConfigError

    try:
        url = readyz_url(load_settings())
    except ConfigError as exc:
        print(f"healthcheck: configuration: {exc}", file=sys.stderr)
        return 1
    if url is None:
        print("healthcheck: [metrics] enabled = false, so there is no /readyz to probe", file=sys.stderr)
        return 1
    ready, reason = probe(url)
    if not ready:
        print(f"healthcheck: {url}: {reason}", file=sys.stderr)
    return 0 if ready else 1


if __name__ == "__main__":
    sys.exit(main())
