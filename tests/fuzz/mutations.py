"""Deterministic mutations of seed inputs, shared by the CI fuzz tests and the long campaign.

A mutation is a small tuple (an "op") so that a finding is reproduced from
(seed name, ops) alone: no mutated binary is ever committed. Hypothesis draws
ops in CI (and shrinks them on failure); ``benchmarks/fuzz/run.py`` draws them
from ``random.Random``.

Ops:
- ``("flip", pos, bit)``           flip one bit
- ``("set", pos, value_bytes)``    overwrite bytes (interesting integers, magic words)
- ``("length", index, value)``     overwrite the index-th DICOM explicit-VR length field
- ``("truncate", pos)``            cut the input at ``pos``
- ``("delete", pos, n)``           remove ``n`` bytes
- ``("insert", pos, data)``        insert bytes
- ``("dup", pos, n, at)``          copy a range to another place (repeated structure)
- ``("splice", pos, other, opos)`` keep ``data[:pos]`` and continue with another seed's tail
Positions are taken modulo the current length, so every op applies to every input.
"""

from __future__ import annotations

import random
import re
import struct

from hypothesis import strategies as st

#: integers that break length and offset arithmetic: zero, one, signed/unsigned
#: limits, "undefined length" and values just past small buffers
INTERESTING_32 = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                  0xFFFFFFFE, 0xFFFFFFFF)
INTERESTING_BYTES = (b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0",
                     b"\xfe\xff\x0d\xe0", b"SQ\x00\x00", b"UN\x00\x00", b"OB\x00\x00", b"DICM",
                     b"\r\n", b"\r\n\r\n", b"0\r\n\r\n", b"--", b"PK\x03\x04", b"\x1f\x8b\x08",
                     b"; ieof", b"\xe0\x7f\x10\x00", b"\x02\x00\x10\x00")
#: at most this many ops per case: enough to combine a length change with a truncation
MAX_OPS = 4

_VR_PATTERN = re.compile(
    rb"(?=(AE|AS|AT|CS|DA|DS|DT|FD|FL|IS|LO|LT|OB|OD|OF|OL|OV|OW|PN|SH|SL|SQ|SS|ST|SV|TM"
    rb"|UC|UI|UL|UN|UR|US|UT|UV))")
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}


def length_field_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of plausible explicit-VR length fields: a VR 4 bytes after an even offset."""
    found = []
    for match in _VR_PATTERN.finditer(data):
        vr_at = match.start()
        if vr_at < 4 or (vr_at - 4) % 2:
            continue
        vr = data[vr_at:vr_at + 2]
        if vr in _LONG_VRS:
            found.append((vr_at + 4, 4))
        else:
            found.append((vr_at + 2, 2))
    return found


def apply(data: bytes, ops: list[tuple], others: list[bytes] | tuple[bytes, ...] = ()) -> bytes:
    """Apply ``ops`` in order; ``others`` are the seeds a splice may continue with."""
    buf = bytearray(data)
    for op in ops:
        kind = op[0]
        n = len(buf)
        if kind == "flip" and n:
            pos = op[1] % n
            buf[pos] ^= 1 << (op[2] % 8)
        elif kind == "set" and n:
            pos = op[1] % n
            value = op[2]
            buf[pos:pos + len(value)] = value
        elif kind == "length":
            fields = length_field_offsets(bytes(buf))
            if fields:
                offset, width = fields[op[1] % len(fields)]
                value = op[2] & (0xFFFF if width == 2 else 0xFFFFFFFF)
                buf[offset:offset + width] = struct.pack("<H" if width == 2 else "<I", value)
        elif kind == "truncate" and n:
            del buf[op[1] % n:]
        elif kind == "delete" and n:
            pos = op[1] % n
            del buf[pos:pos + op[2]]
        elif kind == "insert":
            pos = op[1] % (n + 1)
            buf[pos:pos] = op[2]
        elif kind == "dup" and n:
            pos, count, at = op[1] % n, op[2], op[3] % (n + 1)
            buf[at:at] = buf[pos:pos + count]
        elif kind == "splice" and others:
            other = others[op[2] % len(others)]
            pos = op[1] % (n + 1)
            opos = op[3] % (len(other) + 1)
            buf[pos:] = other[opos:]
    return bytes(buf)


# -- hypothesis strategies ----------------------------------------------------------

_positions = st.integers(min_value=0, max_value=2**20)
_small_bytes = st.one_of(st.sampled_from(INTERESTING_BYTES), st.binary(min_size=1, max_size=16))


def op_strategy() -> st.SearchStrategy[tuple]:
    return st.one_of(
        st.tuples(st.just("flip"), _positions, st.integers(0, 7)),
        st.tuples(st.just("set"), _positions, _small_bytes),
        st.tuples(st.just("length"), st.integers(0, 500), st.sampled_from(INTERESTING_32)),
        st.tuples(st.just("truncate"), _positions),
        st.tuples(st.just("delete"), _positions, st.integers(1, 64)),
        st.tuples(st.just("insert"), _positions, _small_bytes),
        st.tuples(st.just("dup"), _positions, st.integers(1, 256), _positions),
        st.tuples(st.just("splice"), _positions, st.integers(0, 50), _positions),
    )


def ops_strategy() -> st.SearchStrategy[list[tuple]]:
    return st.lists(op_strategy(), min_size=1, max_size=MAX_OPS)


# -- random ops for the long campaign ----------------------------------------------

def random_ops(rng: random.Random, size: int) -> list[tuple]:
    """Like ``ops_strategy`` but from ``rng``; positions biased to the input's real length."""
    def pos() -> int:
        return rng.randrange(max(size, 1) + 1)

    def small() -> bytes:
        if rng.random() < 0.6:
            return rng.choice(INTERESTING_BYTES)
        return rng.randbytes(rng.randint(1, 16))

    makers = [
        lambda: ("flip", pos(), rng.randrange(8)),
        lambda: ("set", pos(), small()),
        lambda: ("length", rng.randrange(500), rng.choice(INTERESTING_32)),
        lambda: ("truncate", pos()),
        lambda: ("delete", pos(), rng.randint(1, 64)),
        lambda: ("insert", pos(), small()),
        lambda: ("dup", pos(), rng.randint(1, 256), pos()),
        lambda: ("splice", pos(), rng.randrange(50), pos()),
    ]
    return [rng.choice(makers)() for _ in range(rng.randint(1, MAX_OPS))]
