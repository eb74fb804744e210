"""Fuzzing the ICAP codec: any byte stream parses or raises ProtocolError, the same way
whether it arrives whole, one byte at a time or in odd pieces; valid bodies survive intact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import mutations, seeds
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.check import check
from tests.fuzz.targets import drive_parser

SEEDS = seeds.icap_seeds()


def test_every_seed_transcript_is_valid_icap():
    """The seeds must be valid, or mutations would start from already-rejected input."""
    for transcript in SEEDS:
        events = drive_parser(transcript)
        assert events[-1] == ("closed",), events[-1]
        assert not [e for e in events if e[0] == "error"]
        assert sum(e[0] == "request" for e in events) >= 1


@fuzz_settings(400)
@given(index=st.integers(0, len(SEEDS) - 1), ops=mutations.ops_strategy())
def test_mutated_transcripts_parse_or_raise_protocol_error(index, ops):
    check("icap-codec", mutations.apply(SEEDS[index], ops, SEEDS))


@fuzz_settings(300)
@given(data=st.binary(max_size=3000))
def test_arbitrary_bytes_parse_or_raise_protocol_error(data):
    check("icap-codec", data)


@fuzz_settings(200)
@given(index=st.integers(0, len(SEEDS) - 1), tail=st.binary(min_size=1, max_size=600),
       where=st.integers(0, 10_000))
def test_garbage_inside_a_valid_transcript(index, tail, where):
    seed = SEEDS[index]
    cut = where % (len(seed) + 1)
    check("icap-codec", seed[:cut] + tail)


@fuzz_settings(200)
@given(body=st.binary(min_size=1, max_size=5000), preview=st.none() | st.integers(0, 6000),
       sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=4))
def test_any_body_comes_out_exactly_as_it_went_in(body, preview, sizes):
    """Round trip at the codec level: chunk boundaries, preview split and ieof never alter the body."""
    head = b"POST /u HTTP/1.1\r\nHost: h\r\n\r\n"
    transcript = seeds.icap_request("REQMOD", head, None, body, preview=preview)
    if preview is None:  # re-chunk with the drawn sizes instead of the default ones
        heads_end = transcript.index(b"\r\n\r\n", transcript.index(b"Host: h")) + 4
        transcript = transcript[:heads_end] + seeds.chunked(body, tuple(sizes))
    events = drive_parser(transcript, tuple(sizes))
    got = b"".join(e[1] for e in events if e[0] == "body")
    assert got == body
    ends = [e for e in events if e[0] == "end"]
    assert len(ends) == 1 and ends[0][1] == (preview is not None and preview >= len(body))
    assert events[-1] == ("closed",)
