"""Releasing a response's bytes while the rest is checked: what leaves early must hold nothing.

The release check (:mod:`icapdlp.adaptation.release`) lets Squid 5.7 see an
answer begin before the whole body is read. These tests feed it bodies the
way the server does (in pieces of random size) and judge only the bytes it
cleared: a receiver that gets a response cut off after them must find no
planted value in them, whatever wrapping the object rides in and wherever in
the body it starts. The end-of-body verdict is tested elsewhere; here the
question is only what could leave before it.
"""

from __future__ import annotations

import base64
import bz2
import lzma
import os
import random
import re
import warnings
import zlib

import pytest

from icapdlp.adaptation import release
from icapdlp.adaptation.api import NeedBody
from icapdlp.adaptation.release import ALIGN_BYTES, HOLD_BYTES, STEP_BYTES, CheckedRelease, CodedRelease
from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import passes_unopened
from tests.fuzz.budget import SCALE
from tests.fuzz.wrappings import generate, receiver_views, surviving
from tests.support import synthetic

OPTIONS = PayloadOptions()
#: cases of the adversarial run in CI (ICAPDLP_FUZZ_SCALE multiplies it)
CASES = int(150 * SCALE)


#: chunk sizes a proxy sends (Squid: up to its 64 KiB buffer), and a large one now and then
PIECES = (1, 700, 4096, 16_384, 65_536)


def cleared_by_pieces(body: bytes, content_type: str | None, rng: random.Random,
                      pieces: tuple[int, ...] = PIECES + (200_000,)) -> int:
    """Feed ``body`` as a socket would deliver it; the count of leading bytes cleared."""
    check = CheckedRelease(content_type, OPTIONS)
    at = cleared = 0
    while at < len(body):
        size = rng.choice(pieces)
        cleared += check.feed(body[at:at + size])
        at += size
        assert cleared <= at - HOLD_BYTES or cleared == 0, "bytes were released without the hold behind them"
    assert cleared == check.cleared and cleared % ALIGN_BYTES == 0
    return cleared


def opaque(rng: random.Random, size: int) -> bytes:
    return (b"\xff\xd8\xff\xe0" + rng.randbytes(max(size - 4, 0)))[:size]


def page(rng: random.Random, size: int) -> bytes:
    words = [b"radiology", b"portal", b"<div class='row'>", b"</div>\n", b"function(a){return a}", b"12.5"]
    out = bytearray(b"<!doctype html><html><body>\n")
    while len(out) < size:  # numbers keep it about as compressible as real markup (3-5:1)
        out += rng.choice(words) + b" %d " % rng.getrandbits(24)
    return bytes(out[:size])


def truncated_views(data: bytes, content_type: str | None = None) -> list[bytes]:
    """What a lenient receiver gets from a cut-off response: the oracle's views, plus partial
    inflations of every view that starts with a compressed stream, plus base64 runs cut short."""
    views = [data] + receiver_views(data, content_type, [])
    for view in list(views):
        for magic, make in ((b"\x1f\x8b", lambda: zlib.decompressobj(47)), (b"\x78", lambda: zlib.decompressobj(15)),
                            (b"BZh", bz2.BZ2Decompressor), (b"\xfd7zXZ\x00", lzma.LZMADecompressor)):
            if view.startswith(magic):
                try:
                    partial = make().decompress(view)
                except Exception:  # noqa: BLE001 - not this format after all
                    continue
                views += [partial] + receiver_views(partial, None, [])
        for run in re.finditer(rb"[A-Za-z0-9+/=\s]{64,}", view):
            text = re.sub(rb"[\s=]", b"", run.group())
            for shift in range(4):
                piece = text[shift:]
                views.append(base64.b64decode(piece[:len(piece) // 4 * 4]))
    return views


# -- what is released ------------------------------------------------------------------------------


@pytest.mark.parametrize("make, content_type", [(opaque, "image/jpeg"), (page, "text/html")])
def test_a_large_opaque_or_text_response_is_released_up_to_the_hold(make, content_type):
    rng = random.Random(7)
    body = make(rng, 1024 * 1024)
    cleared = cleared_by_pieces(body, content_type, rng)
    assert len(body) - cleared <= HOLD_BYTES + STEP_BYTES + 200_000  # at most the hold, a step and a piece


def test_nothing_is_released_before_a_body_outgrows_the_hold_and_a_step():
    """A body Squid 5.7 buffers whole anyway stays whole: it still gets its 204."""
    check = CheckedRelease("image/jpeg", OPTIONS)
    assert check.feed(opaque(random.Random(1), HOLD_BYTES + STEP_BYTES - 1)) == 0


#: a gap of the whole-body walk (README, "Not found"): the release check is that walk, so it has it too


@pytest.mark.parametrize("glue", ["part10", "bare", "zlib", "zip", "base64",
                                  "base64-lines", "utf16-base64"])
def test_an_object_behind_a_large_prefix_stops_the_release_before_it(glue):
    rng = random.Random(11)
    original = synthetic.make_ct(4)
    data = original.data
    payloads = {
        "part10": data,
        "bare": data[144 + int.from_bytes(data[140:144], "little"):],  # the dataset after the file meta
        "zlib": zlib.compress(data),
        "zip": _zip_of(data),
        "base64": base64.b64encode(data),
        "base64-lines": base64.encodebytes(data),
        "utf16-base64": base64.b64encode(data).decode().encode("utf-16-le"),
    }
    prefix = opaque(rng, 300_000) if glue != "utf16-base64" else page(rng, 300_000).decode().encode("utf-16-le")
    body = prefix + payloads[glue] + opaque(rng, 200_000)
    cleared = cleared_by_pieces(body, "application/octet-stream", rng, PIECES)
    released = body[:cleared]
    assert cleared >= len(prefix) - 100_000, "the prefix was released"
    assert cleared <= len(prefix) + 512, "bytes of the object were released"
    assert original.surviving(b"".join(truncated_views(released))) == []


def test_a_release_check_that_raises_releases_nothing_more(monkeypatch):
    check = CheckedRelease("image/jpeg", OPTIONS)
    rng = random.Random(3)
    assert check.feed(opaque(rng, 100_000)) > 0

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")
    monkeypatch.setattr(release, "passes_unopened", broken)
    assert check.feed(opaque(rng, 100_000)) == 0 and check.stopped
    monkeypatch.undo()
    assert check.feed(opaque(rng, 100_000)) == 0  # stopped for good: the end-of-body verdict decides alone


@pytest.mark.slow
def test_wrapped_planted_values_behind_a_released_prefix_never_leave_early():
    """The adversarial wrappings, glued behind 60-300 KB of binary or text and followed by more."""
    rng = random.Random(20261204)
    released_cases = 0
    leaks = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(CASES):
            case = generate(rng)
            if case.codings:
                continue  # a coded body is never released
            size = rng.choice([60_000, 120_000, 300_000])
            prefix = rng.choice([opaque, page])(rng, size)
            body = prefix + case.body + rng.choice([opaque, page])(rng, rng.choice([0, 50_000, 150_000]))
            cleared = cleared_by_pieces(body, case.content_type, rng)
            released_cases += cleared > 0
            released = body[:cleared]
            left = surviving(case.planted, truncated_views(released, case.content_type))
            if left:
                leaks.append((case.shape, case.content_type, cleared, len(prefix)))
    assert leaks == [], f"{len(leaks)} cases released planted values early, e.g. {leaks[:5]}"
    # (a declared container type, or a coding, holds a body whole from its first window)
    assert released_cases > CASES // 6, "the run must exercise releasing, not only holding"


def _zip_of(data: bytes) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("IM0", data)
    return buffer.getvalue()


def test_the_truncated_view_finds_what_a_cut_off_stream_still_gives():
    """The oracle's own check: a planted value in the first half of a cut gzip is found."""
    original = synthetic.make_ct(5)
    stream = zlib.compressobj(9, zlib.DEFLATED, 31)
    squeezed = stream.compress(original.data) + stream.flush()
    cut = squeezed[:len(squeezed) * 3 // 4]
    assert original.surviving(b"".join(truncated_views(cut))) != []


# -- which bodies the adapter releases --------------------------------------------------------------


def _preview_decision(tx, preview: bytes = b"\xff\xd8\xff\xe0" + bytes(4092), adapter=None):
    import asyncio

    from tests.adaptation.helpers import make_adapter

    return asyncio.run((adapter or make_adapter()).on_preview(tx, preview, False))


@pytest.mark.parametrize("length", [None, 64 * 1024 + 1, 10_000_000])
def test_a_large_or_unsized_response_is_read_with_a_release_check(length):
    from tests.adaptation.helpers import response_tx

    decision = _preview_decision(response_tx("image/jpeg", length))
    assert isinstance(decision, NeedBody) and isinstance(decision.release, CheckedRelease)


@pytest.mark.parametrize("token", ["gzip", "x-gzip", "deflate", "br"])
def test_a_large_response_under_one_streamable_coding_is_checked_on_its_decoded_content(token):
    from tests.adaptation.helpers import response_tx

    decision = _preview_decision(response_tx("text/html", None, extra=[("Content-Encoding", token)]))
    assert isinstance(decision, NeedBody) and isinstance(decision.release, CodedRelease)


def test_what_is_held_whole():
    from tests.adaptation.helpers import make_adapter, make_settings, request_tx, response_tx

    held = {
        "fits Squid's buffer": _preview_decision(response_tx("image/jpeg", 64 * 1024)),
        "an upload": _preview_decision(request_tx("image/jpeg", 10_000_000)),
        "stacked codings": _preview_decision(response_tx("text/html", None,
                                                         extra=[("Content-Encoding", "gzip, br")])),
        "zstd (no bounded streaming decoder)": _preview_decision(
            response_tx("text/html", None, extra=[("Content-Encoding", "zstd")]), preview=b"\x28\xb5\x2f\xfd"),
        "turned off": _preview_decision(response_tx("image/jpeg", None), adapter=make_adapter(
            make_settings(payload=PayloadOptions(release_responses=False)))),
    }
    for name, decision in held.items():
        assert isinstance(decision, NeedBody) and decision.release is None, name
    # a declared container gets a check, whose first window holds it whole
    check = _preview_decision(response_tx("application/zip", None), preview=b"PK\x03\x04" + bytes(100)).release
    assert check.feed(_zip_of(random.Random(5).randbytes(300_000))) == 0 and check.stopped


# -- a window is read the way the whole body is (found by the adversarial review) -------------------


def _feed_in(body: bytes, content_type: str, piece: int = 4096) -> CheckedRelease:
    check = CheckedRelease(content_type, OPTIONS)
    for at in range(0, len(body), piece):
        check.feed(body[at:at + piece])
    return check


def _tiny_part10() -> tuple[synthetic.Synthetic, bytes]:
    original = synthetic.make_ct(6)
    return original, original.data


def test_xml_model_after_a_window_cut_inside_a_multibyte_character_stops_the_release():
    """A window starting mid-character was read as binary, where the XML model was not looked for."""
    wide_chars = "中".encode() * 40_000
    model = (b'<NativeDicomModel><DicomAttribute tag="00100010" vr="PN"><PersonName number="1">'
             b"<Alphabetic><FamilyName>PLANTED</FamilyName></Alphabetic></PersonName></DicomAttribute>"
             b"</NativeDicomModel>")
    body = b"<doc><!--" + wide_chars + b"-->" + model + b"<!--" + wide_chars + b"--></doc>"
    assert not passes_unopened("text/xml", [], body, OPTIONS)
    check = _feed_in(body, "text/xml")
    assert check.stopped and check.cleared <= body.index(model)


def test_utf16_text_is_read_as_utf16_in_every_window():
    """A later window's first characters made it look like UTF-8 or binary; base64 in it went unread."""
    original, data = _tiny_part10()
    text = '{"a":"' + "中" * 30_000 + '","file":"' + base64.b64encode(data).decode() + '","b":"' + "中" * 30_000 + '"}'
    body = b"\xff\xfe" + text.encode("utf-16-le")
    check = _feed_in(body, "application/json")
    assert check.stopped and check.cleared <= body.index(base64.b64encode(data)[:16].decode().encode("utf-16-le"))


@pytest.mark.parametrize("declared", ["application/octet-stream", "text/plain"])
def test_a_body_that_opens_like_multipart_is_held_whole(declared):
    """Only the close delimiter at its end makes it multipart; a window never holds both."""
    original, data = _tiny_part10()
    import gzip as gzip_module

    body = (b"--XyZ1\r\nContent-Type: text/plain\r\n\r\n" + b"notes " * 20_000 + b"\r\n--XyZ1\r\n"
            b"Content-Type: application/gzip\r\n\r\n" + gzip_module.compress(data) + b"\r\n--XyZ1--\r\n")
    check = _feed_in(body, declared)
    assert check.stopped and check.cleared == 0


def test_a_text_window_cut_mid_character_still_releases_plain_text():
    body = "Überweisung für Röntgen — 中文 ".encode() * 20_000
    check = _feed_in(body, "text/plain", piece=4097)
    assert not check.stopped and check.cleared > len(body) - HOLD_BYTES - STEP_BYTES - 4097


# -- coded responses (gzip, deflate, br): checked on what they decode to ----------------------------


def _encode(coding: str, data: bytes) -> bytes:
    import gzip as gzip_module

    import brotli

    return {"gzip": lambda: gzip_module.compress(data, mtime=0), "deflate": lambda: zlib.compress(data),
            "br": lambda: brotli.compress(data, quality=4)}[coding]()


def _decode_prefix(coding: str, coded: bytes) -> bytes:
    """What any decoder gets from a coded prefix (a cut-off download)."""
    from icapdlp.payload.encoding import StreamDecoder

    out = bytearray()
    try:
        for piece in StreamDecoder(coding).decode(coded, 1 << 20):
            out += piece
    except ValueError:
        pass
    return bytes(out)


def coded_cleared(coding: str, decoded: bytes, content_type: str | None, rng: random.Random) -> tuple[int, bytes]:
    coded = _encode(coding, decoded)
    check = CodedRelease(coding, content_type, OPTIONS)
    at = cleared = 0
    while at < len(coded):
        size = rng.choice(PIECES)
        cleared += check.feed(coded[at:at + size])
        at += size
    return cleared, coded


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_a_coded_page_is_released_and_decodes_to_its_own_start(coding):
    rng = random.Random(21)
    decoded = page(rng, 2_000_000)
    cleared, coded = coded_cleared(coding, decoded, "text/html", rng)
    assert cleared > len(coded) // 2
    released = _decode_prefix(coding, coded[:cleared])
    assert decoded.startswith(released) and len(decoded) - len(released) >= HOLD_BYTES


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br"])
def test_an_object_inside_a_coded_response_never_leaves_decoded_or_coded(coding):
    rng = random.Random(22)
    original = synthetic.make_ct(7)
    prefix = page(rng, 400_000)
    decoded = prefix + b"<pre>" + base64.b64encode(original.data) + b"</pre>" + page(rng, 200_000)
    cleared, coded = coded_cleared(coding, decoded, "text/html", rng)
    released = _decode_prefix(coding, coded[:cleared])
    assert 0 < len(released) <= len(prefix) + 512
    assert original.surviving(b"".join(truncated_views(released))) == []


def test_a_decompression_bomb_stops_the_release_early():
    rng = random.Random(23)
    check = CodedRelease("gzip", "text/plain", OPTIONS)
    bomb = _encode("gzip", bytes(400_000_000))  # about 390 KB that inflate 1000:1
    for at in range(0, len(bomb), 65_536):
        check.feed(bomb[at:at + 65_536])
        if check.stopped:
            break
    assert check.stopped and check.cleared < 100_000


def test_a_page_that_inflates_far_more_than_markup_stops_the_release_before_it_is_walked():
    """The walk runs on the event loop: 512 KiB of a 160:1 page caught up at once held it for 12 s.

    Repetitive text passes every window, so nothing but its inflation can stop it;
    the release stops (the answer is held open) and a worker decodes it at its end.
    """
    rng = random.Random(25)
    lines = b"".join(b"<p>report %d</p>\n" % rng.getrandbits(20) for _ in range(200))
    coded = _encode("gzip", lines * 3000)  # about 10 MB that inflate about 150:1
    check = CodedRelease("gzip", "text/plain", OPTIONS)
    check._inner = walked = _Walked(check._inner)
    arrival = coded[:65_536]  # about what Squid 5.7 sends before it pauses
    check.feed(arrival)
    assert check.stopped and check.cleared == 0
    bound = release.RELEASE_INFLATE_RATIO * len(arrival) + release.INFLATE_SLACK_BYTES + release.DECODED_PIECE_BYTES
    assert walked.fed <= bound


def test_a_burst_behind_a_body_that_barely_compresses_stops_the_release_before_it_is_walked():
    """The ratio over the body so far left room for one arrival to inflate tens of megabytes."""
    rng = random.Random(26)
    text = base64.b64encode(rng.randbytes(1_200_000))
    stream = zlib.compressobj(6, zlib.DEFLATED, 31)
    coded = (stream.compress(b"\n".join(text[at:at + 76] for at in range(0, len(text), 76)))
             + stream.compress(b"<p>report portal row</p>\n" * 800_000) + stream.flush())
    check = CodedRelease("gzip", "text/plain", OPTIONS)
    check._inner = walked = _Walked(check._inner)
    arrival, most = 65_536, 0
    for at in range(0, len(coded), arrival):
        before = walked.fed
        check.feed(coded[at:at + arrival])
        most = max(most, walked.fed - before)
        if check.stopped:
            break
    assert check.stopped and check.cleared > 0  # the start was released; the burst was not walked
    assert most <= release.RELEASE_INFLATE_RATIO * arrival + release.INFLATE_SLACK_BYTES + release.DECODED_PIECE_BYTES


class _Walked:
    """A CheckedRelease that counts the decoded bytes it is fed."""

    def __init__(self, inner: CheckedRelease) -> None:
        self.inner, self.fed = inner, 0

    def feed(self, data: bytes) -> int:
        self.fed += len(data)
        return self.inner.feed(data)

    @property
    def stopped(self) -> bool:
        return self.inner.stopped

    @property
    def cleared(self) -> int:
        return self.inner.cleared


def test_junk_after_the_coded_stream_stops_the_release():
    rng = random.Random(24)
    coded = _encode("gzip", page(rng, 300_000)) + b"JUNK" + bytes(200_000)
    check = CodedRelease("gzip", "text/html", OPTIONS)
    for at in range(0, len(coded), 16_384):
        check.feed(coded[at:at + 16_384])
    assert check.stopped


@pytest.mark.slow
def test_wrapped_planted_values_inside_a_coded_response_never_leave_early():
    """The adversarial wrappings again, behind a large prefix, the whole under gzip, deflate or br."""
    rng = random.Random(20261205)
    leaks, released_cases, tried = [], 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(CASES // 2):
            case = generate(rng)
            if case.codings:
                continue
            tried += 1
            coding = rng.choice(["gzip", "deflate", "br"])
            prefix = rng.choice([opaque, page])(rng, rng.choice([60_000, 200_000]))
            decoded = prefix + case.body + rng.choice([opaque, page])(rng, rng.choice([0, 100_000]))
            cleared, coded = coded_cleared(coding, decoded, case.content_type, rng)
            released_cases += cleared > 0
            released = _decode_prefix(coding, coded[:cleared])
            left = surviving(case.planted, truncated_views(released, case.content_type) + [coded[:cleared]])
            if left:
                leaks.append((coding, case.shape, case.content_type, len(released), len(prefix)))
    assert leaks == [], f"{len(leaks)} coded cases released planted values early, e.g. {leaks[:5]}"
    assert released_cases > tried // 6, (released_cases, tried)


# -- responses that may need rewriting are held open, not released ----------------------------------


@pytest.mark.parametrize("content_type, filler", [
    ('multipart/related; type="application/dicom"; boundary=x', b"\r\n"),
    ("application/dicom+json", b"\n"), ("application/json", b"\n"), ("application/vnd.api+json", b"\n"),
])
def test_a_large_multipart_or_json_response_is_held_open_with_filler_its_format_ignores(content_type, filler):
    from icapdlp.adaptation.api import HoldOpen
    from tests.adaptation.helpers import response_tx

    tx = response_tx(content_type, 5_000_000)
    decision = _preview_decision(tx, preview=b"--x\r\n" if "multipart" in content_type else b"[{")
    assert isinstance(decision, NeedBody) and decision.release is None
    assert isinstance(decision.hold_open, HoldOpen) and decision.hold_open.filler == filler
    sent = decision.hold_open.response.headers
    assert sent.get("Content-Length") is None and sent.get("ETag") is None  # true of any body that follows
    assert sent.get("Content-Type") == content_type


@pytest.mark.parametrize("preview", [
    b"\xef\xbb\xbf[{", b"\xff\xfe[\x00{\x00", b"[\x00{\x00", b"\x00\x00\x00[", b"",
], ids=["utf-8-mark", "utf-16-mark", "utf-16-without-mark", "utf-32", "no-preview"])
def test_a_large_json_response_not_known_to_start_as_plain_utf8_is_held_open_without_filler(preview):
    """A newline in front of a byte order mark makes JSON invalid (json.loads and JSON.parse drop a
    mark only as the first character); in front of UTF-16 or UTF-32 it shifts every character."""
    from tests.adaptation.helpers import response_tx

    decision = _preview_decision(response_tx("application/json", 5_000_000), preview=preview)
    assert decision.release is None and decision.hold_open.filler == b""


def test_the_head_a_rewrite_sends_matches_the_held_open_one_but_for_its_length():
    """The server refuses to continue a held-open answer with any other head."""
    from icapdlp.adaptation.heads import held_open_response, with_new_body_length
    from tests.adaptation.helpers import response_tx

    tx = response_tx('multipart/related; type="application/dicom"; boundary=x', 5_000_000)
    _request, rewritten = with_new_body_length(tx, 1234)
    assert list(rewritten.headers.without("Content-Length")) == list(held_open_response(tx).headers)


def test_a_small_response_is_neither_released_nor_held_open():
    """It fits Squid's buffer: Squid sends it all, and it keeps its 204 and a proper block page."""
    from tests.adaptation.helpers import response_tx

    small = _preview_decision(response_tx("multipart/related; boundary=x", 60_000), preview=b"--x\r\n")
    assert small.hold_open is None and small.release is None


def test_a_coded_multipart_response_is_released_on_its_decoded_content_or_else_held_open_without_filler():
    """The filler would have to be inside the coding; a rewrite keeps the coding and the held-open head."""
    from icapdlp.adaptation.release import CodedRelease
    from tests.adaptation.helpers import response_tx

    coded = _preview_decision(response_tx("multipart/related; boundary=x", None,
                                          extra=[("Content-Encoding", "gzip")]), preview=b"\x1f\x8b\x08")
    assert isinstance(coded.release, CodedRelease)
    assert coded.hold_open.filler == b"" and coded.hold_open.response.headers.get("Content-Encoding") == "gzip"


@pytest.mark.parametrize("content_type, codings, preview", [
    ("text/html", [("Content-Encoding", "zstd")], b"\x28\xb5\x2f\xfd" + bytes(60)),
    ("text/html", [("Content-Encoding", "gzip"), ("Content-Encoding", "br")], b"\x1f\x8b\x08" + bytes(60)),
    ("application/dicom", [], bytes(128) + b"DICM" + bytes(60)),
], ids=["zstd", "stacked-codings", "raw-dicom"])
def test_a_large_response_that_cannot_be_released_is_held_open_with_its_head_only(content_type, codings, preview):
    """Squid 5.7 stalled these: the answer now begins with the head, and the body follows its verdict."""
    from tests.adaptation.helpers import response_tx

    decision = _preview_decision(response_tx(content_type, 5_000_000, extra=codings), preview=preview)
    assert isinstance(decision, NeedBody) and decision.release is None
    assert decision.hold_open.filler == b"" and decision.hold_open.response.headers.get("Content-Length") is None


def test_a_large_zip_is_checked_for_release_and_held_open_once_the_check_stops():
    from tests.adaptation.helpers import response_tx

    decision = _preview_decision(response_tx("application/zip", 5_000_000), preview=b"PK\x03\x04" + bytes(60))
    assert isinstance(decision.release, CheckedRelease) and decision.hold_open.filler == b""
    decision.release.feed(b"PK\x03\x04" + bytes(60_000))
    assert decision.release.stopped and decision.release.cleared == 0


def test_responses_are_never_answered_early_when_release_is_off():
    from tests.adaptation.helpers import make_adapter, make_settings, response_tx

    adapter = make_adapter(make_settings(payload=PayloadOptions(release_responses=False)))
    for content_type in ("application/zip", "multipart/related; boundary=x", "application/dicom"):
        decision = _preview_decision(response_tx(content_type, 5_000_000), adapter=adapter)
        assert decision.release is None and decision.hold_open is None


def test_wide_text_without_a_mark_that_reads_in_both_byte_orders_is_held_whole():
    """The whole-body walk reads such text both ways; a window is read one way only."""
    from icapdlp.payload import signatures

    body = ("中文报告 " * 40_000).encode("utf-16-le")
    assert len(signatures.wide_texts(body[:4096])) > 1
    check = _feed_in(body, "text/plain")
    assert check.stopped and check.cleared == 0


# -- base64 pieces far apart: the whole-body walk joins them, so every window sees the join -----------


def _pieces_far_apart(junk: bytes) -> tuple[synthetic.Synthetic, list[bytes], bytes]:
    """The base64 of a Part-10 file in pieces cut after the 'D' of DICM and one character into the
    Patient's Name, each piece alone no object, with ``junk`` (more than a window) between them."""
    original = synthetic.make_ct(361)
    b64 = base64.b64encode(original.data)
    name_at = original.data.index(b"\x10\x00\x10\x00PN") + 12
    cuts = [0, 172, name_at * 4 // 3 + 1, len(b64)]
    pieces = [b64[a:b] for a, b in zip(cuts, cuts[1:])]
    return original, pieces, junk[:5000] + junk.join(pieces) + junk * 3


@pytest.mark.parametrize("reading", ["text", "binary"])
def test_base64_pieces_further_apart_than_a_window_never_leave_past_the_marker(reading):
    """Red-team F33: each window passed alone, Python's b64decode of the released part read the header."""
    junk = b"." * 50_000 if reading == "text" else bytes(0x80 + i % 100 for i in range(50_000))
    original, pieces, body = _pieces_far_apart(junk)
    assert original.surviving(base64.b64decode(bytes(c for c in body if c < 0x80 and c != 0x2E)
                                               [:len(body)], validate=False)) != []  # the whole body holds it
    check = CheckedRelease("text/plain" if reading == "text" else "application/octet-stream", PayloadOptions())
    cleared = sum(check.feed(body[at:at + 16384]) for at in range(0, len(body), 16384))
    released = body[:cleared]
    assert pieces[1] not in released and pieces[2] not in released
    joined = bytes(c for c in released if c < 0x80 and c != 0x2E)
    assert original.surviving(base64.b64decode(joined[:len(joined) // 4 * 4], validate=False)) == []
