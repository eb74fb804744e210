#!/usr/bin/env python3
"""Reproducer: a zip directory entry with an unknown compression method escapes as NotImplementedError.

Found by the fuzz "zip" target (one bit flipped in the central directory:
compression method 8 -> 264 on the entry "dir/"). ``read_archive`` does not
read directory entries, so their method is never checked; ``rebuild_archive``
then writes the copied ZipInfo and zipfile raises NotImplementedError. The
exception leaves the payload layer (the worker task), so the server blocks
the message with internal-error instead of unsafe-archive: still closed, but
with the wrong reason, an error log line and a broken invariant.

Expected: ``Blocked(UNSAFE_ARCHIVE, ...)`` for any member (directories
included) whose compression method zipfile cannot handle.
"""

from __future__ import annotations

import io
import struct
import sys
import zipfile

from _common import verdict

from icapdlp.verdict import Blocked
from tests.fuzz import targets
from tests.support import synthetic


def archive_with_bad_directory_method() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.dcm", synthetic.make_ct(1).data)  # a DICOM member: the archive is rebuilt
        archive.writestr("dir/", b"")
    data = bytearray(buf.getvalue())
    central = data.rfind(b"PK\x01\x02")  # the directory entry is the last central record
    struct.pack_into("<H", data, central + 10, 264)  # compression method field
    return bytes(data)


def main() -> int:
    data = archive_with_bad_directory_method()
    try:
        targets.payload_body("application/zip", (), data)
    except Blocked as blocked:
        return verdict(False, f"blocked ({blocked.reason.value})")
    except NotImplementedError:
        return verdict(True, "NotImplementedError escapes the worker task (server answers internal-error)")
    return verdict(False, "archive passed without error")


if __name__ == "__main__":
    sys.exit(main())
