"""PassThroughAdapter: "no change" for everything. For protocol tests and the benchmark ONLY.

It exists so the ICAP layer can be tested and measured without the DICOM
pipeline. ``icapdlp serve`` never uses it: the application always builds the
real adapter (``icapdlp.adaptation.factory``), because passing DICOM through
unchanged is exactly what icapdlp must never do. Tests and the benchmark hand
:func:`build_passthrough_adapter` to ``icapdlp.app.application.AdapterFactory``
themselves.
"""

from __future__ import annotations

from icapdlp.adaptation.api import Body, BodyDecision, NoChange, PreviewDecision
from icapdlp.server.blockpage import minimal_block_response
from icapdlp.transaction import Transaction
from icapdlp.verdict import BlockReason


class PassThroughAdapter:
    """Decides from the preview that nothing changes (204 where allowed, else an echo)."""

    async def on_preview(self, tx: Transaction, preview: bytes, complete: bool) -> PreviewDecision:
        return NoChange()

    async def on_body(self, tx: Transaction, body: Body) -> BodyDecision:
        return NoChange()

    def block_response(self, tx: Transaction, reason: BlockReason):
        return minimal_block_response(tx, reason)


def build_passthrough_adapter(settings, key, pool) -> PassThroughAdapter:
    """Same signature as ``icapdlp.adaptation.factory.build_adapter``."""
    return PassThroughAdapter()

