"""Files written as text and glued to other text: base64 at a shifted alignment, quoted-printable.

Found by the wrappings fuzzer (benchmarks/fuzz/findings, 7 of 10 recorded
cases): base64 of a DICOM object glued with no separator behind words made of
base64 characters decodes to garbage from the run's first character, so the
walker saw nothing; Python's ``b64decode`` of the whole body (it skips every
character outside the alphabet) gets the object whenever the words hold a
multiple of four letters, and a receiver that cuts the words off always does.
Quoted-printable leaves the text values of an object readable as they are.
Each case below passed the old code; the receiver's own decoding shows the
object is there.
"""

from __future__ import annotations

import base64
import binascii
import json
import quopri

import pytest

from icapdlp.payload import textruns
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import form_body, marker, walk
from tests.payload.test_multipart_one_reading import PLANTED, tiny_bare_dataset
from tests.support.synthetic import make_ct

DCM = make_ct(43).data
TINY = tiny_bare_dataset()
#: words of base64-alphabet characters, as the fuzzer's prose prefix; the last word, glued to the
#: data, shifts it by 1, 2, 3 and 0 characters (several lines of them: by their letters in all)
WORDS = [b"here is x", b"it is ok", b"look and see", b"sent here", b"lines\nof\nwords\nbefore\nit"]


#: a run aligned by luck decodes to a few bytes of garbage before the object: a DICOM marker inside
#: content that is not unpacked (unparseable-dicom); found only at another alignment: uninspectable
REFUSALS = {BlockReason.UNINSPECTABLE, BlockReason.UNPARSEABLE_DICOM}


def refused(content_type: str | None, body: bytes) -> BlockReason:
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    return info.value.reason


def python_reads(body: bytes, data: bytes, words: bytes) -> bool:
    """Whether Python's lenient b64decode returns ``data`` from ``body`` with some words cut off."""
    for start in range(len(words) + 1):
        for padding in (b"", b"=", b"=="):
            try:
                if data in base64.b64decode(body[start:] + padding):
                    return True
            except binascii.Error:
                continue
    return False


@pytest.mark.parametrize("words", WORDS, ids=["shift1", "shift2", "shift3", "shift0", "lines"])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.encodebytes, base64.urlsafe_b64encode],
                         ids=["one-line", "mime-lines", "urlsafe"])
@pytest.mark.parametrize("data", [DCM, TINY], ids=["part10", "bare"])
def test_base64_glued_behind_words_is_refused(words, encode, data):
    body = words + encode(data)
    if encode is not base64.urlsafe_b64encode:
        assert python_reads(body, data, words)  # the receiver gets the object
    assert refused("text/plain", body) in REFUSALS


def test_whole_body_b64decode_of_words_and_data_returns_the_object():
    """The reading Python's b64decode makes of the whole body, when the words hold 4k letters."""
    body = b"b file follows " + base64.b64encode(TINY)  # 12 letters before the data: aligned
    assert TINY in base64.b64decode(body)
    assert refused(None, body) in REFUSALS


@pytest.mark.parametrize("junk", [b".", b"*", b"-", b"_"])
def test_base64_broken_up_by_junk_characters_is_refused(junk):
    """Python's b64decode skips the junk (a standard decoder skips - and _ too): no run is 64 long."""
    text = base64.b64encode(DCM)
    body = junk.join(text[i:i + 20] for i in range(0, len(text), 20))
    assert base64.b64decode(body) == DCM
    assert refused("text/plain", body) in REFUSALS


def test_a_glued_run_beside_a_rewritten_one_is_still_refused():
    body = json.dumps({"a": base64.b64encode(DCM).decode(),
                       "b": "see attached scans" + base64.b64encode(TINY).decode()}).encode()
    assert refused("application/json", body) in REFUSALS


def test_base64_glued_inside_a_json_string_is_refused():
    body = json.dumps({"note": "scan" + base64.b64encode(DCM).decode()[:-4] + "AAAA"}).encode()
    assert refused("application/json", body) in REFUSALS


# -- quoted-printable outside a MIME part -------------------------------------------------------

@pytest.mark.parametrize("data", [DCM, TINY], ids=["part10", "bare"])
@pytest.mark.parametrize("prefix", [b"", b"here it is: ", bytes(range(256)) * 4], ids=["alone", "words", "binary"])
def test_an_object_written_as_quoted_printable_is_refused(data, prefix):
    body = prefix + quopri.encodestring(data)
    assert PLANTED in body or data is DCM  # its text values are readable as they are
    assert quopri.decodestring(body).endswith(data)  # and a decoder returns the object
    assert refused("text/plain", body) in REFUSALS


def test_a_multipart_body_glued_behind_words_with_a_quoted_printable_part_is_refused():
    """The fuzzer's shape: no framing finds the part (its delimiter does not start a line)."""
    body = b"some words" + form_body("qpB0undary", [(
        b'Content-Disposition: form-data; name="f"\r\nContent-Transfer-Encoding: quoted-printable',
        quopri.encodestring(TINY))])
    assert refused(None, body) in REFUSALS


def test_a_quoted_printable_part_of_a_declared_multipart_is_still_rewritten():
    body = form_body("qpB0undary", [(
        b'Content-Disposition: form-data; name="f"\r\nContent-Transfer-Encoding: quoted-printable',
        binascii.b2a_qp(DCM, istext=False))])
    result, rewriter = walk("multipart/form-data; boundary=qpB0undary", body)
    assert rewriter.seen == [DCM] and marker(DCM) in result.body


# -- ordinary text still passes, byte for byte ----------------------------------------------------

ORDINARY = {
    "prose": b"The quick brown fox jumps over the lazy dog; then it rests. " * 2000,
    "html": b"<div class=\"nav-bar x_y\"><a href=\"/a-b/c_d?x=1&y=2\">Home page</a></div>\n" * 800,
    "csv": b"id,first_name,last_name,email,score\n" + b"".join(
        b"%d,Jane-Ann,O_Neil,jane.%d@example.org,%d.5\n" % (i, i, i) for i in range(3000)),
    "json": json.dumps([{"id": i, "uuid": f"{i:08x}-aaaa-bbbb-cccc-{i:012x}", "tag": "alpha_beta-gamma"}
                        for i in range(2000)]).encode(),
    "qp-mail": quopri.encodestring("Grüße aus Köln, à bientôt, ça va.\r\n".encode() * 400),
    "base64-image": json.dumps({"png": base64.b64encode(bytes(range(256)) * 300).decode(),
                                "caption": "see attached image"}).encode(),
    "urlsafe-tokens": b"\n".join(base64.urlsafe_b64encode(bytes([i]) * 90) for i in range(200)),
}


@pytest.mark.parametrize("name", list(ORDINARY))
def test_ordinary_text_is_passed_unchanged(name):
    body = ORDINARY[name]
    assert walk("text/plain", body)[0].body is body


def test_lenient_readings_of_words_and_data_include_the_aligned_one():
    body = b"abc" + base64.b64encode(TINY)
    assert any(TINY in reading for reading in textruns.lenient_readings(body))
    assert textruns.quoted_printable_reading(b"a=3Db c=20d " * 4) is None  # a few escapes: text
    assert textruns.quoted_printable_reading(quopri.encodestring(TINY)).endswith(TINY)


def test_text_with_rules_of_dashes_is_not_taken_for_a_multipart_body():
    """Found measuring the false-block rate: reST underlines read as a guessed boundary, refused."""
    body = (b"Title\n-----\n\nSome text.\n\nSection\n--------------\n\nMore text.\n"
            b"\n----------------------------------------\n")
    assert walk("text/plain", body)[0].body is body


# -- text in UTF-16 and UTF-32 ------------------------------------------------------------------

@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
def test_a_json_upload_in_utf16_or_utf32_is_rewritten(codec):
    """Python's json.loads reads all of these (by the mark, or the NULs of the first characters)."""
    body = json.dumps({"file": base64.b64encode(DCM).decode(), "name": "scan"}).encode(codec)
    assert base64.b64decode(json.loads(body)["file"]) == DCM  # what the API gets
    result, rewriter = walk("application/json", body)
    assert rewriter.seen == [DCM]
    parsed = json.loads(result.body)
    assert base64.b64decode(parsed["file"]) == marker(DCM) and parsed["name"] == "scan"
    assert result.body.startswith(body[:2]) and len(result.body) % (4 if "32" in codec else 2) == 0


def test_ordinary_utf16_text_passes_unchanged():
    body = ("Grüße, a note in UTF-16 with nothing encoded in it. " * 200).encode("utf-16")
    assert walk("text/plain", body)[0].body is body


# -- what else a lenient receiver reads: hex glued to words, base64 padded piece by piece ---------

@pytest.mark.parametrize("words", [b"see a", b"deadbeef a", b"note: ab"], ids=["odd", "hex-word-odd", "even"])
def test_hex_glued_behind_words_of_hex_letters_is_refused(words):
    body = words + TINY.hex().encode()
    assert bytes.fromhex(body[len(words):].decode()) == TINY  # a receiver that cuts the words off
    assert refused("text/plain", body) in REFUSALS


@pytest.mark.parametrize("piece, glue", [(55, b"\n"), (10, b""), (55, b"\r\n")])
def test_base64_padded_piece_by_piece_is_refused(piece, glue):
    """Each piece padded on its own: Python stops at the first padding, a line-by-line reader does not."""
    body = b"here x" + glue.join(base64.b64encode(TINY[i:i + piece]) for i in range(0, len(TINY), piece))
    pieces = [p for p in body[6:].replace(b"\r\n", b"\n").split(b"\n")] if glue else None
    if pieces:
        assert b"".join(base64.b64decode(p) for p in pieces) == TINY  # the line-by-line reader
    assert refused("text/plain", body) in REFUSALS


@pytest.mark.parametrize("encode", [
    base64.b32encode, base64.a85encode, lambda d: base64.a85encode(d, adobe=True, wrapcol=76), base64.b85encode,
    lambda d: b"begin 644 scan.dcm\n" + b"".join(binascii.b2a_uu(d[i:i + 45]) for i in range(0, len(d), 45))
    + b"`\nend\n",
], ids=["base32", "ascii85", "ascii85-adobe", "base85", "uuencode"])
def test_a_body_in_a_rarer_text_encoding_is_refused(encode):
    """Python's base64 and binascii modules decode all of these; none is rewritten, none passes."""
    assert refused("text/plain", encode(TINY)) in REFUSALS


def test_letters_and_spaces_only_pass_although_they_spell_base32():
    body = b"hello world this is only letters and spaces " * 300
    assert walk("text/plain", body)[0].body is body


@pytest.mark.parametrize("preamble", [b"words glued", b"x" * 2000])
def test_a_declared_multipart_body_whose_first_delimiter_is_glued_to_its_preamble_is_refused(preamble):
    """Werkzeug finds the first delimiter without a line break before it; the strict reading does not."""
    import io

    from werkzeug.formparser import MultiPartParser

    body = (preamble + b'--B0undary\r\nContent-Disposition: form-data; name="f"; filename="x.dcm"\r\n\r\n'
            + TINY + b"\r\n--B0undary--\r\n")
    _, files = MultiPartParser().parse(io.BytesIO(body), b"B0undary", len(body))
    assert files["f"].read() == TINY  # what Flask hands the application
    with pytest.raises(Blocked) as info:
        walk("multipart/form-data; boundary=B0undary", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_quoted_printable_written_as_quoted_printable_again_is_refused():
    """Found by campaign 20261209: a part inside a part, each quoted-printable; "=3D00=3D08" only."""
    body = b"some words" + quopri.encodestring(quopri.encodestring(TINY))
    assert PLANTED in body and b"=00=" not in body
    assert quopri.decodestring(quopri.decodestring(body[10:])) == TINY
    assert refused("text/plain", body) in REFUSALS


# -- base64 broken up by junk bytes inside binary content ---------------------------------------

#: opaque binary around the run: no byte of the base64 alphabet in it, so a lenient decoder that
#: is handed the region (it knows where its field starts) reads the run's characters and nothing else
BINARY = bytes(b for b in range(256) if not (chr(b).isalnum() or chr(b) in "+/-_=")) * 4


@pytest.mark.parametrize("piece", [16, 40, 100], ids=["16", "40", "100"])
@pytest.mark.parametrize("junk", [b"\x00", b"\xff\xfe\x01", b"\r\n\x00\x00"], ids=["nul", "bytes", "crlf-nul"])
@pytest.mark.parametrize("data", [DCM, TINY], ids=["part10", "bare"])
def test_base64_broken_up_by_junk_bytes_inside_binary_is_refused(piece, junk, data):
    """The binary path read base64 stretch by stretch: a run cut into pieces by bytes was never whole."""
    text = base64.b64encode(data)
    region = junk.join(text[i:i + piece] for i in range(0, len(text), piece))
    body = BINARY + region + BINARY
    assert base64.b64decode(region) == data  # Python's decoder skips the junk bytes
    assert refused("application/octet-stream", body) in REFUSALS


def test_binary_with_short_words_between_junk_bytes_passes():
    """Symbol tables and strings in binary: stretches of letters between NULs decode to nothing."""
    words = b"\x00".join(b"symbol_name_%04d_with_words" % i for i in range(2000))
    body = BINARY + words + BINARY
    assert walk("application/octet-stream", body)[0].body is body


# -- UTF-16 and UTF-32 text with no byte order mark and non-ASCII first characters --------------

@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"])
@pytest.mark.parametrize("words", ["Заключение: ", "日本語の報告 ", "€ "], ids=["cyrillic", "cjk", "euro"])
def test_bomless_wide_text_starting_with_non_ascii_is_read_as_the_text_it_is(codec, words):
    """json.detect_encoding guesses by NULs among the first bytes: "Д" (04 14) or "日" show none."""
    body = (words + "\n" + base64.b64encode(DCM).decode() + "\n").encode(codec)
    assert base64.b64decode(body.decode(codec).split("\n")[1]) == DCM  # a receiver told the charset
    result, rewriter = walk("text/plain; charset=" + codec, body)
    assert rewriter.seen == [DCM]
    assert base64.b64decode(result.body.decode(codec).split("\n")[1]) == marker(DCM)
    assert result.body.decode(codec).startswith(words)


def test_bomless_utf16_be_text_that_also_reads_as_utf16_le_is_read_both_ways():
    """Base64 in UTF-16-BE ("\\0A") reads as CJK in little endian: both readings are text."""
    body = ("日本 " + base64.b64encode(DCM).decode()).encode("utf-16-be")
    body.decode("utf-16-le")  # (valid little endian too)
    result, rewriter = walk(None, body)
    assert rewriter.seen == [DCM]


def test_ordinary_bomless_wide_text_starting_with_non_ascii_passes_unchanged():
    body = ("Заключение без вложений. " * 500).encode("utf-16-le")
    assert walk("text/plain", body)[0].body is body


@pytest.mark.parametrize("coding", ["gzip", "bzip2", "xz", "zstd"])
def test_base64_of_a_compressed_object_broken_up_inside_binary_is_refused(coding):
    """Found by the wrappings fuzzer: the stream's reading was joined to the next one (junk after the
    stream: "not a compressed body"), and its short last piece was left out (a truncated stream)."""
    from icapdlp.payload.encoding import encode

    text = base64.b64encode(encode(DCM, coding))
    region = b"\x00\x01".join(text[i:i + 40] for i in range(0, len(text), 40))
    body = BINARY + region + BINARY
    assert refused("application/octet-stream", body) in REFUSALS


def test_bomless_wide_text_written_as_base64_broken_up_inside_binary_is_refused():
    """Found by the wrappings fuzzer (seed 20261212): the readings of binary were joined into one
    walk, and the UTF-16 text of the right one, followed by the others, was no text any more."""
    wide = ("日本語の報告 " + base64.b64encode(DCM).decode() + "\n").encode("utf-16-le")
    text = base64.b64encode(wide)
    body = BINARY + b"\x00".join(text[i:i + 40] for i in range(0, len(text), 40)) + BINARY
    assert refused("application/octet-stream", body) in REFUSALS


def _broken_up(data: bytes, piece: int) -> bytes:
    text = base64.b64encode(data)
    return BINARY + b"\x00\x01".join(text[i:i + piece] for i in range(0, len(text), piece)) + BINARY


@pytest.mark.parametrize("piece", [16, 40], ids=["16", "40"])
@pytest.mark.parametrize("data", [DCM, TINY], ids=["part10", "bare"])
def test_base64_broken_up_inside_binary_nested_in_the_same_again_is_refused(piece, data):
    """Found by the wrappings fuzzer (seed 20261212): inside a lenient reading the pieces of runs were
    not joined, so the reading of the outer pieces, itself binary holding pieces, showed nothing."""
    body = _broken_up(_broken_up(data, piece), piece)
    inner = base64.b64decode(body.translate(None, BINARY))  # a decoder handed the region skips the junk
    assert base64.b64decode(inner.translate(None, BINARY)) == data  # ... twice
    assert refused("application/octet-stream", body) in REFUSALS


# -- base32 in other alphabets and cases, rarer encodings in JSON strings (red team a04) ----------

@pytest.mark.parametrize("encode", [lambda d: base64.b32encode(d).lower(), base64.b32hexencode],
                         ids=["base32-lower-case", "base32hex"])
def test_a_body_in_another_base32_alphabet_is_refused(encode):
    assert refused("text/plain", encode(TINY)) in REFUSALS


@pytest.mark.parametrize("encode", [
    base64.b32encode, lambda d: base64.b32encode(d).lower(), base64.a85encode, base64.b85encode,
], ids=["base32", "base32-lower-case", "ascii85", "base85"])
def test_a_rarer_encoding_in_a_json_string_is_refused(encode):
    body = json.dumps({"name": "scan", "file": encode(TINY).decode()}).encode()
    assert refused("application/json", body) in REFUSALS


def test_a_lower_case_sentence_with_a_few_digits_passes():
    body = b"we met on day 3 and day 4 and agreed to meet again in 2 weeks " * 50
    assert walk("text/plain", body)[0].body is body


def test_an_adobe_ascii85_block_inside_prose_is_refused():
    body = b"Attached scan follows.\n" + base64.a85encode(TINY, adobe=True, wrapcol=76) + b"\nRegards\n"
    assert refused("text/plain", body) in REFUSALS


def test_a_uuencoded_block_in_a_binary_body_is_refused():
    """GNU uudecode finds the begin line among any bytes (a control byte in the name: a binary body)."""
    lines = b"".join(binascii.b2a_uu(TINY[i:i + 45]) for i in range(0, len(TINY), 45))
    body = (b"begin 644 a\x01.dcm\n" + lines
            + b"`\nend\n")
    assert refused("application/octet-stream", body) in REFUSALS
