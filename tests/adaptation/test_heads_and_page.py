from __future__ import annotations

import pytest

from icapdlp.http import HttpHeaders
from icapdlp.adaptation.blockpage import prefers_json
from icapdlp.adaptation.heads import declared_length, rewritten_headers


def test_rewritten_headers_drop_validators_and_fix_length_only():
    before = HttpHeaders([("Host", "h"), ("Content-Length", "10"), ("ETag", '"x"'), ("Content-MD5", "m"),
                          ("Digest", "d"), ("Repr-Digest", "r"), ("Content-Digest", "c"),
                          ("Last-Modified", "l"), ("Content-Encoding", "gzip"), ("X-Other", "o")])
    after = rewritten_headers(before, 42)
    assert list(after) == [("Host", "h"), ("Content-Length", "42"), ("Content-Encoding", "gzip"),
                           ("X-Other", "o")]


def test_chunked_messages_get_no_content_length_and_duplicates_collapse():
    chunked = rewritten_headers(HttpHeaders([("Transfer-Encoding", "chunked"), ("Content-Length", "5")]), 9)
    assert chunked.get("Content-Length") is None and chunked.get("Transfer-Encoding") == "chunked"
    twice = rewritten_headers(HttpHeaders([("Content-Length", "5"), ("Content-Length", "5")]), 9)
    assert twice.get_all("Content-Length") == ["9"]


@pytest.mark.parametrize("fields, expected", [
    ([("Content-Length", "12")], 12),
    ([("Content-Length", "12"), ("Content-Length", "12")], 12),  # c-icap-client sends it twice
    ([("Content-Length", "12"), ("Content-Length", "13")], None),
    ([("Content-Length", "-1")], None),
    ([("Content-Length", "12"), ("Transfer-Encoding", "chunked")], None),
    ([], None),
])
def test_declared_length(fields, expected):
    assert declared_length(HttpHeaders(fields)) == expected


@pytest.mark.parametrize("accept, expected", [
    (None, False), ("*/*", False), ("application/json", True), ("application/dicom+json", True),
    ("text/html,application/xhtml+xml,*/*;q=0.8", False), ("application/json;q=0.9,text/html;q=0.5", True),
    ("text/html;q=0.1, application/json", True), ("application/json;q=0", False),
])
def test_accept_negotiation(accept, expected):
    assert prefers_json(accept) is expected
