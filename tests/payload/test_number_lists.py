"""Files written as lists of decimal byte values (red-team F2).

``JSON.stringify`` of a Node ``Buffer`` is ``{"type":"Buffer","data":[0,0,...]}``;
``Buffer.from(obj.data)`` or Python's ``bytes(json.loads(body))`` turns it back
into the file. A Part-10 object sent so passed as JSON holding numbers.
"""

from __future__ import annotations

import json
import struct
from urllib.parse import parse_qs

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


def _flatten(value):
    return [n for item in value for n in (_flatten(item) if isinstance(item, list) else [item])]


#: the same list in the other shapes a receiver flattens (red team a31, a52): numpy's
#: ``reshape(-1, 32).tolist()``, a float array, repeated form keys (``parse_qs``), PHP's ``b[]``
OTHER_SHAPES = {
    "2-d-list": (lambda data: json.dumps([list(data[i:i + 32]) for i in range(0, len(data), 32)]),
                 lambda body: bytes(_flatten(json.loads(body)))),
    "floats": (lambda data: json.dumps([float(n) for n in data]),
               lambda body: bytes(int(n) for n in json.loads(body))),
    "form-repeated-keys": (lambda data: "&".join(f"b={n}" for n in data),
                           lambda body: bytes(int(n) for n in parse_qs(body.decode())["b"])),
    "php-array": (lambda data: "&".join(f"b%5B%5D={n}" for n in data),
                  lambda body: bytes(int(n) for n in parse_qs(body.decode())["b[]"])),
}


@pytest.mark.parametrize("shape", list(OTHER_SHAPES))
@pytest.mark.parametrize("data", [DCM, tiny_bare_dataset()], ids=["part10", "bare"])
def test_a_file_as_bytes_in_other_list_shapes_is_refused(shape, data):
    write, read = OTHER_SHAPES[shape]
    body = write(data).encode()
    assert read(body) == data  # what the receiver gets
    content_type = "application/x-www-form-urlencoded" if "=" in body.decode() else "application/json"
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_a_file_as_a_list_of_uint16_values_is_refused():
    """``Array.from(new Uint16Array(buffer))`` or ``np.frombuffer(data, '<u2').tolist()``."""
    data = DCM[:len(DCM) // 2 * 2]
    values = list(struct.unpack(f"<{len(data) // 2}H", data))
    body = json.dumps(values).encode()
    assert struct.pack(f"<{len(values)}H", *json.loads(body)) == data
    with pytest.raises(Blocked) as info:
        walk("application/json", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_a_form_of_many_numeric_fields_without_dicom_passes():
    body = "&".join(f"q{i}={i % 200}" for i in range(400)).encode()
    assert walk("application/x-www-form-urlencoded", body)[0].body is body
