"""``icapdlp serve`` with the pass-through adapter, for protocol end-to-end tests only.

The product's ``serve`` always builds the DICOM adapter; protocol tests must
not depend on the DICOM layer, so this entry point injects the pass-through
factory and otherwise runs the very same ``serve`` code.
Run as ``python -m tests.app.passthrough_serve --config FILE``.
"""

from __future__ import annotations

import sys

from icapdlp.app import application
from icapdlp.cli import serve
from icapdlp.server.passthrough import build_passthrough_adapter

COMMAND = (sys.executable, "-m", "tests.app.passthrough_serve")

if __name__ == "__main__":
    application.adapter_factory = lambda: application.AdapterFactory(build_passthrough_adapter)
    sys.exit(serve.main())
