"""Full rewrite of a large raw object without holding it in memory: new header + original pixels.

When a spooled body is one Part-10 object whose pixels the policy leaves as
they are (no pixel cleaning for it, native pixel data, nothing after Pixel
Data), only its header changes. The pipeline's header-only rewrite (the one
ICAP 206 uses) gives the new header and the offset where the original pixel
bytes start; the output file is that header followed by a streamed copy of
the rest of the spooled file. Memory stays at the size of the header instead
of several times the object, and the bytes are the same the 206 path yields.
Anything the header-only rewrite declines goes through the whole pipeline.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from icapdlp.dicom.nested import check_streamed_value
from icapdlp.report import ObjectReport
from icapdlp.verdict import BlockReason, Blocked

#: bodies smaller than this go through the whole pipeline: copying them is cheap
SPLICE_MIN_BYTES = 16 * 1024 * 1024
#: the header must lie within this many leading bytes (real headers are a few KiB;
#: 2000-item reference sequences reach a few hundred KiB)
SPLICE_HEADER_BYTES = 8 * 1024 * 1024
#: bytes per read/write while copying the pixel data
COPY_STEP = 1024 * 1024


def try_splice(path: str, size: int, config: Any, pixel_cleaner: Any,
               spool_dir: str | None) -> tuple[str, ObjectReport] | None:
    """(path of the rewritten body, what the header rewrite did), or None for the whole pipeline.

    ``path`` holds one raw object (the caller's triage said so) of a deidentify service.
    """
    if size < SPLICE_MIN_BYTES:
        return None
    with open(path, "rb") as source:
        prefix = source.read(SPLICE_HEADER_BYTES)
    from icapdlp.dicom.pipeline import header_only_rewrite

    answer = header_only_rewrite(prefix, size, config, pixel_cleaner=pixel_cleaner)
    if answer is None:
        return None
    new_prefix, offset, report = answer
    return _write_spliced(path, new_prefix, offset, spool_dir), report


def _write_spliced(path: str, new_prefix: bytes, offset: int, spool_dir: str | None) -> str:
    out_path = None
    try:
        fd, out_path = tempfile.mkstemp(prefix="icapdlp-out-", dir=spool_dir)
        with os.fdopen(fd, "wb") as out, open(path, "rb") as source:
            out.write(new_prefix)
            source.seek(offset)
            for chunk in check_streamed_value(iter(lambda: source.read(COPY_STEP), b"")):
                out.write(chunk)  # the pixels are checked as the pipeline checks kept values
    except Blocked:
        if out_path is not None:
            os.unlink(out_path)
        raise
    except OSError as exc:
        if out_path is not None:
            try:
                os.unlink(out_path)
            except OSError:
                pass
        raise Blocked(BlockReason.SPOOL_FAILED, f"cannot write rewritten body ({exc.strerror})") from None
    return out_path
