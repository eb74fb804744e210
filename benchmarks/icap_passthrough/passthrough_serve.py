"""``icapdlp serve`` with the pass-through adapter, for this benchmark only (``--adapter passthrough``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from icapdlp.cli import serve  # noqa: E402
from icapdlp.server import app  # noqa: E402
from icapdlp.server.passthrough import passthrough_factory  # noqa: E402

if __name__ == "__main__":
    app.find_adapter_factory = passthrough_factory
    sys.exit(serve.main())
