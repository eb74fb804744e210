"""Fuzzing the DICOM pre-scan, the whole pipeline, the 206 header-only path and the whole
worker task (payload walk + pipeline) on mutated synthetic objects with planted PHI.

Mutations: bit flips, truncations, explicit-VR length-field corruption with
values like 0xFFFFFFFF, inserted delimiters and magic words, duplicated ranges
and splices of two objects. Invariant: a result or ``Blocked``; a result is a
clean, readable Part-10 object; no warning escapes (pydicom's quote values);
per-case deadline and memory bound.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from icapdlp.verdict import Blocked
from tests.fuzz import mutations, seeds, targets
from tests.fuzz.budget import fuzz_settings
from tests.fuzz.check import check
from tests.fuzz.harness import assert_invariant, peak_bound, run_case

NAMED = seeds.dicom_seeds()
DICOM = [data for _, data in NAMED]
PAYLOADS = seeds.payload_seeds()


def test_every_dicom_seed_is_deidentified_without_planted_phi():
    """Unmutated seeds go through and come out clean: the baseline the mutations start from."""
    planted = seeds.dicom_planted()
    for name, data in NAMED:
        out = targets.pipeline(data)
        assert [p for p in planted[name] if p.encode() in out] == [], name


@fuzz_settings(500)
@given(index=st.integers(0, len(DICOM) - 1), ops=mutations.ops_strategy())
def test_mutated_objects_through_the_prescan(index, ops):
    check("prescan", mutations.apply(DICOM[index], ops, DICOM))


@fuzz_settings(800)
@given(index=st.integers(0, len(DICOM) - 1), ops=mutations.ops_strategy())
def test_mutated_objects_through_the_whole_pipeline(index, ops):
    check("pipeline", mutations.apply(DICOM[index], ops, DICOM))


@fuzz_settings(300)
@given(index=st.integers(0, len(DICOM) - 1),
       fields=st.lists(st.tuples(st.integers(0, 500), st.sampled_from(mutations.INTERESTING_32)),
                       min_size=1, max_size=3))
def test_corrupted_length_fields_through_the_whole_pipeline(index, fields):
    """Length fields only: the classic way to make a parser read past its container."""
    check("pipeline", mutations.apply(DICOM[index], [("length", i, v) for i, v in fields]))


@fuzz_settings(300)
@given(index=st.integers(0, len(DICOM) - 1), ops=mutations.ops_strategy())
def test_mutated_objects_through_the_header_only_path(index, ops):
    check("header-only", mutations.apply(DICOM[index], ops, DICOM))


@fuzz_settings(500)
@given(index=st.integers(0, len(PAYLOADS) - 1), ops=mutations.ops_strategy())
def test_mutated_http_bodies_through_the_worker_task(index, ops):
    _, content_type, codings, body = PAYLOADS[index]
    data = mutations.apply(body, ops, [p[3] for p in PAYLOADS])
    outcome = run_case(lambda: targets.payload_body(content_type, codings, data), (Blocked,),
                       max_peak_bytes=peak_bound(len(data)), forbid_warnings=True)
    assert_invariant(outcome, f"worker task on {content_type}")


def test_unmutated_http_bodies_come_out_without_planted_phi():
    planted = [p for values in seeds.dicom_planted().values() for p in values]
    for name, content_type, codings, body in PAYLOADS:
        result = targets.payload_body(content_type, codings, body)
        if name in ("text", "html"):
            assert not result.changed, name
            continue
        assert result.changed, name
        out = result.data
        if codings:  # compare on the decoded body
            from icapdlp.payload.encoding import inflate

            out = inflate(out, codings[0], 1 << 26)
        if name.startswith("zip"):
            from icapdlp.payload.archive import ArchiveLimits, read_archive

            members = read_archive(out, ArchiveLimits(100, 1000, 1 << 26)).members
            out = b"".join(m.data for m in members)
        if name == "gzip-file":
            import gzip

            out = gzip.decompress(out)
        assert [p for p in planted if p.encode() in out] == [], name
