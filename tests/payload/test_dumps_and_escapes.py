"""A file written as a hex dump, a C array or string-literal escapes (red-team F3, F10).

``xxd -r`` turns an ``xxd`` dump back into the file; ``hexdump -C`` and
``od`` dumps and ``xxd -i`` arrays are read back by a two-line script;
``codecs.escape_decode``, ``ast.literal_eval`` or any C/JavaScript string
reader undoes ``\\xNN`` and octal escapes. Each passed as plain text.
"""

from __future__ import annotations

import ast
import codecs
import re
import subprocess
from urllib.parse import unquote_to_bytes

import pytest

from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.support.synthetic import make_ct

DCM = make_ct(75, rows=4, columns=4, signatures=False).data


def dump(tmp_path, *command: str) -> bytes:
    (tmp_path / "scan.dcm").write_bytes(DCM)
    return subprocess.run([*command, "scan.dcm"], cwd=tmp_path, capture_output=True, check=True).stdout


def refused(body: bytes) -> BlockReason:
    with pytest.raises(Blocked) as info:
        walk("text/plain", body)
    return info.value.reason


@pytest.mark.parametrize("command", [["xxd"], ["hexdump", "-C"], ["od", "-Ax", "-tx1"], ["xxd", "-i"]],
                         ids=["xxd", "hexdump-C", "od", "xxd-i"])
def test_a_hex_dump_of_a_file_is_refused(tmp_path, command):
    body = dump(tmp_path, *command)
    if command == ["xxd"]:
        assert subprocess.run(["xxd", "-r"], input=body, capture_output=True, check=True).stdout == DCM
    assert refused(body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("form", ["python-repr", "x-escapes", "octal"])
def test_a_file_as_string_literal_escapes_is_refused(form):
    if form == "python-repr":
        body = repr(DCM).encode()
        assert ast.literal_eval(body.decode()) == DCM
    else:
        escape = "\\x{:02x}" if form == "x-escapes" else "\\{:03o}"
        body = ("var data = \"" + "".join(escape.format(b) for b in DCM) + "\";\n").encode()
        assert codecs.escape_decode(body[12:-3])[0] == DCM
    assert refused(body) is BlockReason.UNINSPECTABLE


def test_text_with_a_few_escapes_and_a_short_dump_passes():
    body = (b'printf "a\\x00b\\n"; echo "\\033[0m"\n' * 5 + b"00000000: 6865 6c6c 6f  hello\n"
            + b"Times: 10: 20: 30: 40: 50:\n")
    assert walk("text/plain", body)[0].body is body


@pytest.mark.parametrize("form", ["buffer-json", "x-escapes", "octal"])
def test_a_text_file_written_so_is_read_too(form):
    """Found by a trial fuzz wrapping: a JSON upload (base64 of the object inside) written as numbers
    or escapes has no zero byte and no escaped NUL, which the first gates wanted."""
    import base64
    import json

    inner = json.dumps({"file": base64.b64encode(DCM).decode()}).encode()
    if form == "buffer-json":
        body = json.dumps({"type": "Buffer", "data": list(inner)}, separators=(",", ":")).encode()
    else:
        escape = "\\x{:02x}" if form == "x-escapes" else "\\{:03o}"
        body = ("var b = \"" + "".join(escape.format(b) for b in inner) + "\";\n").encode()
    assert refused(body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("separator", [":", ",", "-"])
def test_hex_pairs_joined_by_a_separator_are_refused(separator):
    """Red-team F36: openssl / MAC-address style, or a CSV line of hex bytes."""
    body = separator.join(f"{b:02X}" for b in DCM).encode() + b"\n"
    assert bytes.fromhex(body.decode().replace(separator, "")) == DCM
    assert refused(body) is BlockReason.UNINSPECTABLE


def test_a_json_array_of_hex_strings_is_refused():
    """Red-team F30: ["00","10",...]; bytes(int(x, 16) for x in json.loads(body))."""
    import json

    body = json.dumps([f"{b:02x}" for b in DCM]).encode()
    assert bytes(int(x, 16) for x in json.loads(body)) == DCM
    assert refused(body) is BlockReason.UNINSPECTABLE


def _percent_u_escape(data: bytes) -> str:
    """JavaScript's ``escape()`` shape: controls, 8-bit bytes and form delimiters as ``%uXXXX``."""
    return "".join(f"%u{b:04X}" if b < 0x20 or b >= 0x7F or chr(b) in "%+&=" else chr(b) for b in data)


def _percent_u_unescape(body: bytes) -> bytes:
    return unquote_to_bytes(re.sub(rb"%u([0-9a-fA-F]{4})", lambda m: bytes([int(m.group(1), 16)]), body))


def test_a_file_as_percent_u_escapes_is_refused():
    """Red team a07: ``unescape()`` (JavaScript, classic ASP) reads ``%u0000`` as a character."""
    data = make_ct(72).data
    body = _percent_u_escape(data).encode()
    assert _percent_u_unescape(body) == data
    with pytest.raises(Blocked) as info:
        walk("application/x-www-form-urlencoded", body)
    assert info.value.reason is BlockReason.UNINSPECTABLE


def test_text_with_percent_u_escapes_and_no_dicom_passes():
    body = ("Caf%u00E9 na%u00EFve r%u00E9sum%u00E9 " * 40).encode()
    assert walk("text/plain", body)[0].body is body


@pytest.mark.parametrize("form", ["ihex", "srec"])
def test_a_file_as_intel_hex_or_s_records_is_refused(tmp_path, form):
    """Red team a02: ``objcopy -I binary -O ihex|srec`` writes it, ``objcopy -O binary`` reads it back."""
    (tmp_path / "scan.dcm").write_bytes(DCM)
    subprocess.run(["objcopy", "-I", "binary", "-O", form, "scan.dcm", "scan.txt"], cwd=tmp_path, check=True)
    subprocess.run(["objcopy", "-I", form, "-O", "binary", "scan.txt", "back.dcm"], cwd=tmp_path, check=True)
    assert (tmp_path / "back.dcm").read_bytes() == DCM
    assert refused((tmp_path / "scan.txt").read_bytes()) is BlockReason.UNINSPECTABLE
