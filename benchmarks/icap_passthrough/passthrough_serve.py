"""``icapdlp serve`` with the pass-through adapter, for this benchmark only (``--adapter passthrough``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from icapdlp.app import application  # noqa: E402
from icapdlp.cli import serve  # noqa: E402
from icapdlp.server.passthrough import build_passthrough_adapter  # noqa: E402

if __name__ == "__main__":
    application.adapter_factory = lambda: application.AdapterFactory(build_passthrough_adapter)
    sys.exit(serve.main())
