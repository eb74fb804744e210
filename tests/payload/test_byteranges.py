"""A DICOM object cut into byte ranges of one 206 answer (red-team F11).

Each part of a ``multipart/byteranges`` body was classified alone; cut so
that no piece shows a DICM marker or a patient element followed by others,
every piece passed, while a reader that writes each part at its
Content-Range (a download manager, a range-reading viewer) gets the object.
"""

from __future__ import annotations

import pytest
from pydicom import dcmread
from io import BytesIO

from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.support.synthetic import make_ct

CT = make_ct(74, rows=4, columns=4, signatures=False)
BOUNDARY = "RNG"


def byteranges(data: bytes, cuts: list[int], order: list[int] | None = None) -> bytes:
    bounds = [0, *cuts, len(data)]
    pieces = [(bounds[i], data[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)]
    out = b""
    for index in order or range(len(pieces)):
        start, piece = pieces[index]
        out += (f"--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Range: bytes {start}-{start + len(piece) - 1}/{len(data)}\r\n\r\n").encode()
        out += piece + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


def placed(body: bytes) -> bytes:
    """What a range reader writes: each part at its offset."""
    out = bytearray()
    for chunk in body.split(f"--{BOUNDARY}".encode())[1:-1]:
        head, _, content = chunk.partition(b"\r\n\r\n")
        start = int(head.split(b"bytes ")[1].split(b"-")[0])
        content = content[:-2]
        out[start:start + len(content)] = content if len(out) >= start else bytes(start - len(out)) + content
    return bytes(out)


@pytest.mark.parametrize("step", [24, 40, 64])
@pytest.mark.parametrize("shuffled", [False, True], ids=["in-order", "shuffled"])
def test_an_object_cut_into_byte_ranges_is_refused(step, shuffled):
    data = CT.data
    cuts = [128, 132, *range(133, len(data), step)]  # "DICM" alone, then pieces no element fits in whole
    order = list(range(len(cuts) + 1))
    if shuffled:
        order = order[1::2] + order[::2]
    body = byteranges(data, cuts, order)
    assert str(dcmread(BytesIO(placed(body))).PatientName)  # the reader gets the object
    with pytest.raises(Blocked) as info:
        walk(f"multipart/byteranges; boundary={BOUNDARY}", body, direction="response")
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


def test_byte_ranges_of_an_ordinary_file_pass():
    body = byteranges(b"an ordinary document, " * 200, [1000, 2500])
    assert walk(f"multipart/byteranges; boundary={BOUNDARY}", body, direction="response")[0].body is body
