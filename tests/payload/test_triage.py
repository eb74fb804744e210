"""The preview decision: pass only a body that is all at hand and accounted for; read the rest."""

from __future__ import annotations

import gzip
import json

import pytest

from icapdlp.payload.triage import Verdict, triage
from tests.payload.test_archive import make_zip
from tests.support.synthetic import make_ct

DCM = make_ct(4).data
BARE = make_ct(4, bare=True).data
PREVIEW = 4096


@pytest.mark.parametrize("content_type, body", [
    ("text/html; charset=utf-8", b"<!doctype html><html>" + b"x" * 10000),
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
