from __future__ import annotations

import io
import json

import pydicom
import pytest

from icapdlp.payload.dicomjson import looks_like_dicom_json, parse_datasets, strip_bulk_data_uris
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.support.synthetic import make_ct


def test_sniffing_the_json_model():
    assert looks_like_dicom_json(b' [ {"00080005": {"vr": "CS"}}]')
    assert looks_like_dicom_json(b'{"7FE00010":{"vr":"OW"}}')
    assert not looks_like_dicom_json(b'{"name": "x"}')
    assert not looks_like_dicom_json(b'[1, 2]')


def test_bulk_data_uris_are_removed_at_every_depth():
    data = {"7FE00010": {"vr": "OW", "BulkDataURI": "u1"},
            "00081115": {"vr": "SQ", "Value": [{"00420011": {"vr": "OB", "BulkDataURI": "u2"}}]}}
    assert strip_bulk_data_uris(data) == 2
    assert "BulkDataURI" not in json.dumps(data)


@pytest.mark.parametrize("body, reason", [
    (b"not json", BlockReason.UNPARSEABLE_DICOM),
    (b'[{"name": 1}]', BlockReason.UNPARSEABLE_DICOM),
    (b"[1]", BlockReason.UNPARSEABLE_DICOM),
    (b"[" * 100_000 + b"]" * 100_000, BlockReason.LIMIT_EXCEEDED),
])
def test_bad_json_is_blocked(body, reason):
    with pytest.raises(Blocked) as info:
        parse_datasets(body)
    assert info.value.reason is reason


def test_depth_limit_at_limit_and_one_past():
    def nested(depth: int) -> bytes:
        # outer list (1) > dataset (2) > element (3) > Value lists (4 .. depth)
        value = "[" * (depth - 3) + "]" * (depth - 3)
        return ('[{"00100010": {"vr": "PN", "Value": ' + value + "}}]").encode()

    assert parse_datasets(nested(200))
    with pytest.raises(Blocked) as info:
        parse_datasets(nested(201))
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def test_url_attributes_are_removed_at_every_depth():
    from icapdlp.payload.dicomjson import strip_url_attributes

    data = {"00081190": {"vr": "UR", "Value": ["http://pacs/studies/1.2.3"]},
            "00081199": {"vr": "SQ", "Value": [{"00081190": {"vr": "UR", "Value": ["http://pacs/x/1.2.3.4"]},
                                                "00081155": {"vr": "UI", "Value": ["1.2.3.4"]}}]}}
    assert strip_url_attributes(data) == 2
    assert "http" not in json.dumps(data) and data["00081199"]["Value"][0]["00081155"]


# -- the model in shapes a second parse gives back (red team a19) ---------------------------------

def _model() -> dict:
    ds = pydicom.dcmread(io.BytesIO(make_ct(79, rows=2, columns=2).data))
    del ds.PixelData
    return ds.to_json_dict()


@pytest.mark.parametrize("shape", ["double-encoded", "twice-double-encoded", "single-quoted", "u0022-quotes"])
def test_the_model_in_an_escaped_string_or_a_single_quoted_literal_is_refused(shape):
    plain = json.dumps(_model())
    body = {"double-encoded": lambda: json.dumps({"meta": plain}),
            "twice-double-encoded": lambda: json.dumps({"outer": json.dumps({"meta": plain})}),
            "single-quoted": lambda: plain.replace('"', "'"),
            "u0022-quotes": lambda: '{"meta": "' + plain.replace('"', "\\u0022") + '"}'}[shape]().encode()
    if shape == "u0022-quotes":
        assert json.loads(json.loads(body)["meta"]) == json.loads(plain)  # the receiver's two parses
    with pytest.raises(Blocked) as info:
        walk("application/json" if shape != "single-quoted" else "application/javascript", body)
    assert info.value.reason is BlockReason.UNPARSEABLE_DICOM


def test_quoted_hex_keys_that_are_no_model_pass():
    body = json.dumps({"note": "ids: {'deadbeef': 1, 'cafebabe': [2]}", "x": "it's 'fine'"}).encode()
    assert walk("application/json", body)[0].body is body
