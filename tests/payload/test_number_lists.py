"""Files written as lists of decimal byte values (red-team F2).

``JSON.stringify`` of a Node ``Buffer`` is ``{"type":"Buffer","data":[0,0,...]}``;
``Buffer.from(obj.data)`` or Python's ``bytes(json.loads(body))`` turns it back
into the file. A Part-10 object sent so passed as JSON holding numbers.
"""

from __future__ import annotations

import json

import pytest

from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.payload.test_multipart_one_reading import tiny_bare_dataset
from tests.support.synthetic import make_ct

DCM = make_ct(72).data
SHAPES = {
    "node-buffer": lambda data: json.dumps({"type": "Buffer", "data": list(data)}, separators=(",", ":")),
    "json-array": lambda data: json.dumps(list(data)),
    "csv": lambda data: ",".join(map(str, data)),
    "one-per-line": lambda data: "\n".join(map(str, data)),
}


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("data", [DCM, tiny_bare_dataset()], ids=["part10", "bare"])
def test_a_file_as_a_list_of_decimal_bytes_is_refused(shape, data):
    body = SHAPES[shape](data).encode()
    numbers = json.loads(body)["data"] if shape == "node-buffer" else [int(n) for n in body.replace(b"\n", b",")
                                                                       .strip(b"[]").split(b",")]
    assert bytes(numbers) == data  # what the receiver gets
    with pytest.raises(Blocked) as info:
        walk("application/json", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_numbers_that_are_no_bytes_pass():
    table = "\n".join(f"{i},0,{i * 1000},0,0" for i in range(2000)).encode()  # a CSV table: values above 255
    assert walk("text/csv", table)[0].body is table
    series = json.dumps({"values": [0] * 500 + list(range(200))}).encode()  # bytes, but no DICOM in them
    assert walk("application/json", series)[0].body is series


def test_a_long_run_of_digits_is_no_list_of_bytes():
    """Found by the nested-encodings test: int() of a 16,000-digit run raised ValueError (internal-error)."""
    body = b"0" * 16_000 + b"," + b",".join(b"1" for _ in range(100))
    assert walk("text/plain", body)[0].body is body
