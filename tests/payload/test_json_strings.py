"""Binary written as JSON string escapes in text that is no single JSON document (red-team F9, F12).

A receiver parses the part it knows (one NDJSON line, a JSONP argument, the
object after an XSSI prefix, ``raw_decode`` of a value followed by other
bytes) and turns the string back into bytes with ``encode("latin-1")``. The
walker read such strings only when the whole body parsed as one document. A
window of a larger body (the release of a large response checks windows)
never parses either: the part of the string it holds is read as far as it
goes.
"""

from __future__ import annotations

import json

import pytest

from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import passes_unopened
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.support.synthetic import make_ct

DCM = make_ct(71).data
DOCUMENT = json.dumps({"name": "scan.dcm", "file": DCM.decode("latin-1")})

SHAPES = {
    "ndjson": (DOCUMENT + "\n" + json.dumps({"done": True}) + "\n").encode(),
    "jsonp": ("callback(" + DOCUMENT + ");").encode(),
    "xssi-prefix": (")]}',\n" + DOCUMENT).encode(),
    "bytes-after": (DOCUMENT + "\n--end--\n").encode(),
}


def receiver_reads(body: bytes) -> bytes:
    """What a receiver that knows the shape gets: the first JSON value from the first brace on."""
    text = body.decode()
    value, _ = json.JSONDecoder().raw_decode(text[text.index("{"):])
    return value["file"].encode("latin-1")


@pytest.mark.parametrize("shape", list(SHAPES))
def test_binary_as_string_escapes_in_text_that_is_no_json_document_is_refused(shape):
    body = SHAPES[shape]
    assert receiver_reads(body) == DCM
    with pytest.raises(Blocked) as info:
        walk("text/plain", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("start", [0, 100, 101, 102, 103, 104, 105])
def test_a_window_holding_part_of_such_a_string_does_not_pass(start):
    """A window starts anywhere (inside the literal, inside an escape) and ends inside the literal."""
    window = DOCUMENT.encode()[start:start + 3000]
    assert len(DOCUMENT) > start + 3000 + 1000  # (the literal runs on past the window)
    assert not passes_unopened("text/plain", [], window, PayloadOptions())
    with pytest.raises(Blocked):
        walk("text/plain", window)


def test_text_with_a_few_control_escapes_passes():
    body = ("\n".join(json.dumps({"line": i, "text": "tab\there, bell\u0007"}) for i in range(10))).encode()
    assert walk("application/x-ndjson", body)[0].body is body


def test_a_json_body_above_the_parse_limit_still_has_its_strings_read(monkeypatch):
    """Red-team F18: above MAX_JSON_PARSE_BYTES (64 MiB) the document was not parsed and passed unread."""
    from icapdlp.payload import textruns

    body = json.dumps({"file": DCM.decode("latin-1"), "pad": "." * 5000}).encode()
    monkeypatch.setattr(textruns, "MAX_JSON_PARSE_BYTES", 4096)  # (the body stands for a 68 MB one)
    assert len(body) > textruns.MAX_JSON_PARSE_BYTES
    with pytest.raises(Blocked) as info:
        walk("application/json", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_a_duplicate_key_whose_first_value_holds_the_file_is_refused():
    """Red-team F38: json.loads keeps the last value; first-match readers (cJSON) the first."""
    body = ('{"file": ' + json.dumps(DCM.decode("latin-1")) + ', "file": "nothing here"}').encode()
    assert json.loads(body)["file"] == "nothing here"
    with pytest.raises(Blocked) as info:
        walk("application/json", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE
