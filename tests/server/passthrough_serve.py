"""``icapdlp serve`` with the pass-through adapter, for protocol end-to-end tests only.

The product's ``serve`` refuses to run without the real adapter; protocol
tests must not depend on the DICOM layer, so this entry point injects the
pass-through factory and otherwise runs the very same ``serve`` code.
Run as ``python -m tests.server.passthrough_serve --config FILE``.
"""

from __future__ import annotations

import sys

from icapdlp.cli import serve
from icapdlp.server import app
from icapdlp.server.passthrough import passthrough_factory

COMMAND = (sys.executable, "-m", "tests.server.passthrough_serve")

if __name__ == "__main__":
    app.find_adapter_factory = passthrough_factory
    sys.exit(serve.main())
