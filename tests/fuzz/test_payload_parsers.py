"""Fuzzing HTTP heads, media types, multipart, zip, tar and gzip/deflate handling.

Invariants: heads parse or raise ProtocolError; multipart splits losslessly or
blocks; inflating never returns more than its limit; zip and tar members stay within
the member and size limits and survive a rebuild unchanged; the preview
triage never raises.
"""

from __future__ import annotations

import gzip
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icapdlp.payload.encoding import inflate
from icapdlp.verdict import BlockReason, Blocked
from tests.fuzz import mutations, seeds
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.check import check
from tests.fuzz.targets import TARGETS

HEAD_SEEDS = TARGETS["http-heads"].seeds()
MULTIPART_SEEDS = TARGETS["multipart"].seeds()
ZIP_SEEDS = TARGETS["zip"].seeds()
TAR_SEEDS = TARGETS["tar"].seeds()
COMPRESSED_SEEDS = TARGETS["compressed"].seeds()
DICOM_SEEDS = seeds.dicom_bytes()


@fuzz_settings(500)
@given(text=st.text(max_size=400) | st.binary(max_size=400).map(lambda b: b.decode("latin-1")))
def test_arbitrary_head_text(text):
    check("http-heads", text.encode("latin-1", "replace"))


@fuzz_settings(300)
@given(index=st.integers(0, len(HEAD_SEEDS) - 1), ops=mutations.ops_strategy())
def test_mutated_heads(index, ops):
    check("http-heads", mutations.apply(HEAD_SEEDS[index], ops, HEAD_SEEDS))


@fuzz_settings(400)
@given(index=st.integers(0, len(MULTIPART_SEEDS) - 1), ops=mutations.ops_strategy())
def test_mutated_multipart_splits_losslessly_or_blocks(index, ops):
    check("multipart", mutations.apply(MULTIPART_SEEDS[index], ops, MULTIPART_SEEDS))


@fuzz_settings(200)
@given(parts=st.lists(st.binary(max_size=200), max_size=6), noise=st.binary(max_size=50))
def test_multipart_with_boundary_like_content(parts, noise):
    """Contents full of near-delimiters: CRLF, dashes and the boundary itself."""
    boundary = seeds.BOUNDARY.encode()
    body = seeds.form_data([(b"Content-Type: application/octet-stream", p.replace(b"Q", b"\r\n--" + boundary))
                            for p in parts]) + noise
    check("multipart", body)


@fuzz_settings(400)
@given(index=st.integers(0, len(COMPRESSED_SEEDS) - 1), ops=mutations.ops_strategy())
def test_mutated_compressed_streams_of_every_coding(index, ops):
    check("compressed", mutations.apply(COMPRESSED_SEEDS[index], ops, COMPRESSED_SEEDS))


@fuzz_settings(400)
@given(index=st.integers(0, len(ZIP_SEEDS) - 1), ops=mutations.ops_strategy())
def test_mutated_zip_archives(index, ops):
    check("zip", mutations.apply(ZIP_SEEDS[index], ops, ZIP_SEEDS))


@fuzz_settings(300)
@given(index=st.integers(0, len(TAR_SEEDS) - 1), ops=mutations.ops_strategy())
def test_mutated_tar_archives(index, ops):
    check("tar", mutations.apply(TAR_SEEDS[index], ops, TAR_SEEDS))


@fuzz_settings(150)
@given(index=st.integers(0, len(DICOM_SEEDS) - 1), ops=mutations.ops_strategy())
def test_preview_triage_never_raises(index, ops):
    check("triage", mutations.apply(DICOM_SEEDS[index], ops, DICOM_SEEDS))


@pytest.mark.parametrize("coding, bomb", [
    ("gzip", gzip.compress(bytes(64 * 1024 * 1024), mtime=0)),
    ("deflate", zlib.compress(bytes(64 * 1024 * 1024))),
])
def test_a_bomb_is_refused_at_the_limit_within_the_memory_bound(coding, bomb):
    """64 MiB of zeros in ~64 KiB: refused at a 1 MiB limit, allocating nowhere near 64 MiB."""
    from tests.fuzz.harness import run_case

    limit = 1024 * 1024
    outcome = run_case(lambda: inflate(bomb, coding, limit), (Blocked,), max_peak_bytes=8 * limit)
    assert outcome.kind == "refused", outcome.signature()
    assert outcome.error.reason is BlockReason.LIMIT_EXCEEDED
    assert outcome.peak_bytes < 8 * limit
