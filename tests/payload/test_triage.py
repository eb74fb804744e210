"""The preview decision: pass only a body that is all at hand and accounted for; read the rest."""

from __future__ import annotations

import base64
import gzip
import json
from urllib.parse import quote_from_bytes

import pytest

from icapdlp.payload.encoding import encode
from icapdlp.payload.triage import Verdict, triage
from tests.payload.test_archive import make_zip
from tests.support.synthetic import make_ct

DCM = make_ct(4).data
BARE = make_ct(4, bare=True).data
PREVIEW = 4096


@pytest.mark.parametrize("content_type, body", [
    # (filler in words: 10000 x's in a row would be a base64 run, which is read whole)
    ("text/html; charset=utf-8", b"<!doctype html><html>" + b"<p>x x</p>" * 1000),
    ("application/javascript", b"function f(){}" * 1000),
    ("image/png", b"\x89PNG\r\n\x1a\n" + b"\0" * 10000),
    ("application/octet-stream", b"MZ\x90\x00" + b"\x01" * 10000),  # an ordinary download
    ("application/json", b'{"user": "someone", "items": [' + b"1," * 5000 + b"1]}"),
    (None, b"%PDF-1.7" + b"\0" * 10000),
])
def test_everyday_traffic_passes_when_the_preview_holds_all_of_it(content_type, body):
    assert triage(content_type, [], body, True).verdict is Verdict.PASS


@pytest.mark.parametrize("content_type", ["text/html", "application/octet-stream", "image/png", None])
def test_a_preview_that_is_not_the_whole_body_never_passes(content_type):
    """The rest may hold anything: a tar's second member, a zip's directory, an encoded file."""
    assert triage(content_type, [], b"x" * PREVIEW, False).verdict is Verdict.NEED_BODY
    assert triage(content_type, [], b"\x01" * PREVIEW, False).verdict is Verdict.NEED_BODY


@pytest.mark.parametrize("content_type, body, verdict", [
    ("application/dicom", DCM, Verdict.RAW_DICOM),
    ("application/octet-stream", DCM, Verdict.RAW_DICOM),
    ("text/plain", BARE, Verdict.RAW_DICOM),  # lying type: found by structure
    ("image/jpeg", DCM, Verdict.RAW_DICOM),
    ("multipart/form-data; boundary=x", b"--x\r\n...", Verdict.NEED_BODY),
    ('multipart/related; type="application/dicom"; boundary=x', b"--x\r\n...", Verdict.NEED_BODY),
    ("application/dicom+json", b"[]", Verdict.NEED_BODY),
    ("application/json", json.dumps([{"00100010": {"vr": "PN"}}]).encode() + b" " * 5000, Verdict.NEED_BODY),
    ("application/zip", b"PK\x03\x04", Verdict.NEED_BODY),
    ("application/octet-stream", make_zip({"a": b"b"}), Verdict.NEED_BODY),
    ("application/gzip", gzip.compress(DCM), Verdict.NEED_BODY),
])
def test_candidates_are_recognised(content_type, body, verdict):
    assert triage(content_type, [], body[:PREVIEW], len(body) <= PREVIEW and False).verdict is verdict


def test_compressed_bodies_are_always_read_whole():
    """Decoding is a worker's job, and what a compressed prefix shows says nothing of the rest."""
    page = gzip.compress(b"<html>" * 5000)
    assert triage("text/html", ["gzip"], page, True).verdict is Verdict.NEED_BODY
    assert triage("application/gzip", [], page, True).verdict is Verdict.NEED_BODY
    assert triage("text/html", ["GZIP"], page[:PREVIEW], False).verdict is Verdict.NEED_BODY


def test_unknown_codings_are_refused_whatever_the_declared_type():
    """A download labelled image/jpeg under br reached curl --compressed as DICOM (issue 12, item 4)."""
    assert triage("application/dicom", ["x-unknown"], b"x", False).verdict is Verdict.UNSUPPORTED_ENCODING
    assert triage("image/jpeg", ["x-unknown"], b"x", False).verdict is Verdict.UNSUPPORTED_ENCODING
    assert triage("text/html", ["x-unknown"], b"x", True).verdict is Verdict.UNSUPPORTED_ENCODING


@pytest.mark.parametrize("coding", ["br", "zstd", "bzip2", "xz"])
def test_every_supported_coding_is_read_whole_whatever_the_type(coding):
    """A download labelled image/jpeg under br came through Squid and curl --compressed got the DICOM."""
    coded = encode(DCM + b"\0" * 70000, coding)[:PREVIEW]
    assert triage("image/jpeg", [coding], coded, False).verdict is Verdict.NEED_BODY


@pytest.mark.parametrize("body", [
    gzip.compress(b"text " * 9000),  # a .txt.gz: still read whole, the prefix proves nothing
    *(encode(b"\0" * 80_000 + DCM, coding) for coding in ("bzip2", "xz", "zstd")),
])
def test_a_compressed_file_is_never_passed_from_a_prefix(body):
    verdict = triage("application/octet-stream", [], body[:PREVIEW], len(body) <= PREVIEW).verdict
    assert verdict is Verdict.NEED_BODY


def test_unknown_coding_tokens_are_refused_whatever_the_type():
    for content_type in ("application/dicom", "application/octet-stream", "text/html", "image/jpeg"):
        for coding in ("compress", "x-compress", "lzma", "aes128gcm", "gzip;q=1"):
            verdict = triage(content_type, [coding], b"x", False).verdict
            assert verdict is Verdict.UNSUPPORTED_ENCODING, (content_type, coding)
    assert triage("text/html", ["gzip, compress"], b"x", False).verdict is Verdict.UNSUPPORTED_ENCODING
    assert triage("text/html", ["identity"], b"<html>" * 100, True).verdict is Verdict.PASS


def test_without_enough_preview_the_body_is_read():
    assert triage("text/html", [], b"", False).verdict is Verdict.NEED_BODY  # -nopreview
    assert triage("text/html", [], DCM[:100], False).verdict is Verdict.NEED_BODY
    assert triage("text/html", [], b"", True).verdict is Verdict.PASS  # no body at all
    assert triage("text/html", [], b"<html>", True).verdict is Verdict.PASS  # small complete body


def test_media_type_parameters_quoted_and_plain():
    from icapdlp.payload.media import parse_media_type

    quoted = parse_media_type('multipart/related; type="application/dicom"; boundary="a;b=c"')
    assert quoted.essence == "multipart/related" and quoted.param("boundary") == "a;b=c"
    assert quoted.param("TYPE") == "application/dicom"
    plain = parse_media_type("Text/HTML; Charset=UTF-8")
    assert plain.essence == "text/html" and plain.param("charset") == "UTF-8"
    assert parse_media_type("not a type").essence == "" and parse_media_type(None).essence == ""


def test_preview_with_a_dicom_file_further_in_reads_the_body():
    tar_like = b"\0" * 512 + DCM
    assert triage("application/x-tar", [], tar_like[:PREVIEW], False).verdict is Verdict.NEED_BODY


@pytest.mark.parametrize("content_type, body", [
    ("application/json", b'{"file": "' + base64.b64encode(DCM) + b'"}'),
    ("text/plain", base64.encodebytes(DCM)),
    ("text/html", b'<img src="data:application/dicom;base64,' + base64.b64encode(DCM) + b'">'),
    ("text/plain", DCM.hex().encode()),
    ("text/plain", b" ".join(f"{b:02X}".encode() for b in DCM)),
    ("application/json", b'{"file": "' + b"A" * (PREVIEW + 10)),  # a run running past the preview
    ("application/x-www-form-urlencoded", b"a=1&file=" + quote_from_bytes(DCM, safe="").encode()),
    ("application/json", json.dumps({"file": DCM.decode("latin-1")}).encode()),  # binary as \u escapes
    ("application/json", ('{"名前": "' + "患者" * 200 + '", "file": "').encode() + base64.b64encode(DCM)),
    ("application/x-www-form-urlencoded", b"file=" + quote_from_bytes(base64.encodebytes(DCM)).encode()),
])
def test_a_file_written_as_text_is_read_whole(content_type, body):
    assert triage(content_type, [], body[:PREVIEW], len(body) <= PREVIEW).verdict is Verdict.NEED_BODY


@pytest.mark.parametrize("body", [
    b"The quick brown fox jumps over the lazy dog. " * 200,
    b'{"id": "3f2a9c1e-5b7d-4e8f-9a0b-1c2d3e4f5a6b", "sha256": "' + b"ab" * 16 + b'", "n": 1}',
    b"<html><body>" + b"<p>An ordinary page with a longishidentifier.</p>" * 100,
])
def test_ordinary_text_passes_when_the_preview_holds_all_of_it(body):
    assert triage("text/html", [], body, True).verdict is Verdict.PASS
