"""Archives whose own tools find them behind other bytes: 7z, RAR and CAB (issue 12).

icapdlp cannot open these formats, so a body that is one is refused
(`uninspectable`). 7-Zip, unrar and cabextract do not need the archive at
the start of a file: they search for its signature (self-extracting
archives are a stub followed by the archive), so a 7z behind one byte, or a
cabinet behind an ``MZ`` stub, is extracted by the stock tool. Each case
below passed the old code unchanged; the tool's own extraction, run in the
test, shows the object is there.
"""

from __future__ import annotations

import subprocess
import zlib

import pytest

from icapdlp.payload import signatures
from icapdlp.payload.walker import passes_unopened
from icapdlp.payload.options import PayloadOptions
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.payload.test_behind_a_prefix import junk
from tests.support.synthetic import make_ct

DCM = make_ct(63).data


def refused(body: bytes) -> BlockReason:
    with pytest.raises(Blocked) as info:
        walk("application/octet-stream", body)
    return info.value.reason


def seven_zip(tmp_path) -> bytes:
    (tmp_path / "scan.dcm").write_bytes(DCM)
    subprocess.run(["7z", "a", "-t7z", "-bd", "out.7z", "scan.dcm"], cwd=tmp_path, check=True,
                   capture_output=True)
    return (tmp_path / "out.7z").read_bytes()


def cabinet(tmp_path) -> bytes:
    (tmp_path / "scan.dcm").write_bytes(DCM)
    subprocess.run(["gcab", "-c", "-z", "out.cab", "scan.dcm"], cwd=tmp_path, check=True, capture_output=True)
    return (tmp_path / "out.cab").read_bytes()


def extracted(tmp_path, body: bytes, command: list[str]) -> bytes:
    """What the tool extracts from ``body`` as a file (it finds the archive wherever it starts)."""
    out = tmp_path / "extracted"
    out.mkdir()
    (out / "body.bin").write_bytes(body)
    subprocess.run([*command, "body.bin"], cwd=out, capture_output=True)  # (a prefix makes 7z warn)
    return (out / "scan.dcm").read_bytes()


@pytest.mark.parametrize("prefix", [b"\n", junk(37), junk(4096, seed=4), b"MZ" + junk(1000, seed=5)],
                         ids=["1", "37", "4096", "stub"])
def test_a_7z_archive_behind_other_bytes_is_refused(tmp_path, prefix):
    body = prefix + seven_zip(tmp_path)
    assert extracted(tmp_path, body, ["7z", "x", "-y"]) == DCM  # the stock tool gets the object
    assert refused(body) is BlockReason.UNINSPECTABLE
    assert not passes_unopened("application/octet-stream", [], body, PayloadOptions())


@pytest.mark.parametrize("prefix", [b"", b"MZ" + junk(1000, seed=5)], ids=["none", "stub"])
@pytest.mark.parametrize("reserved", [b"\0\0\0\0", b"\x01\0\0\0"], ids=["zero", "reserved-set"])
def test_a_cabinet_behind_a_stub_or_with_its_reserved_field_set_is_refused(tmp_path, prefix, reserved):
    archive = bytearray(cabinet(tmp_path))
    archive[4:8] = reserved  # cabextract does not check it
    body = prefix + bytes(archive)
    assert extracted(tmp_path, body, ["cabextract", "-q"]) == DCM
    assert refused(body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("marker", [b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00"], ids=["rar4", "rar5"])
def test_a_rar_marker_behind_other_bytes_is_refused(marker):
    """unrar and 7-Zip look for the marker block in a self-extracting file; the marker alone decides."""
    body = junk(700) + marker + junk(300, seed=6)
    assert refused(body) is BlockReason.UNINSPECTABLE


def test_archive_signatures_that_their_tools_would_not_take_pass():
    """An archiver's binary holds the signatures as constants: without the header checks the tools
    make (7z's start-header CRC, a cabinet's file offset inside its size) they are no archive."""
    seven = signatures.SEVEN_ZIP + b"\0\x04" + b"\x12\x34\x56\x78" + junk(20, seed=9)
    cab = signatures.CAB + bytes(4) + (100).to_bytes(4, "little") + bytes(4) + (5000).to_bytes(4, "little")
    body = junk(500) + seven + junk(500, seed=10) + cab + bytes(16) + junk(500, seed=11)
    result, _ = walk("application/octet-stream", body)
    assert result.body is body


def test_a_7z_start_header_is_believed_by_its_crc():
    start = (1234).to_bytes(8, "little") + (56).to_bytes(8, "little") + (0xDEADBEEF).to_bytes(4, "little")
    header = signatures.SEVEN_ZIP + b"\0\x04" + zlib.crc32(start).to_bytes(4, "little") + start
    body = junk(300) + header + junk(300, seed=12)
    assert refused(body) is BlockReason.UNINSPECTABLE


# -- images and packages icapdlp cannot open, at their start (red-team F22) ---------------------

def test_a_squashfs_image_holding_dicom_is_refused(tmp_path):
    """unsquashfs (and 7-Zip; snaps and AppImages are squashfs) writes the file back; its default
    compressor's zlib streams carry no magic the carving looks for."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "scan.dcm").write_bytes(DCM)
    subprocess.run(["mksquashfs", str(source), str(tmp_path / "img"), "-comp", "gzip", "-noappend", "-quiet"],
                   check=True, capture_output=True)
    body = (tmp_path / "img").read_bytes()
    subprocess.run(["unsquashfs", "-d", str(tmp_path / "out"), str(tmp_path / "img")], check=True,
                   capture_output=True)
    assert (tmp_path / "out" / "scan.dcm").read_bytes() == DCM
    assert refused(body) is BlockReason.UNINSPECTABLE


@pytest.mark.parametrize("offset, magic", [(m[0], m[1]) for m in signatures.UNINSPECTABLE_MAGICS],
                         ids=[m[2].replace(" ", "-") + "-" + m[1][:4].hex() for m in signatures.UNINSPECTABLE_MAGICS])
def test_every_format_icapdlp_cannot_open_is_refused_at_its_start(offset, magic):
    body = junk(offset) + magic + junk(600, seed=14)
    assert refused(body) is BlockReason.UNINSPECTABLE


# -- encrypted files (red-team F39) -------------------------------------------------------------

def test_encrypted_files_are_refused(tmp_path):
    """gpg --symmetric (binary and armoured) and openssl enc: whoever has the passphrase reads them."""
    (tmp_path / "scan.dcm").write_bytes(DCM)
    env = {"GNUPGHOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    for armour in ([], ["--armor"]):
        out = tmp_path / ("scan.asc" if armour else "scan.gpg")
        subprocess.run(["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--passphrase", "x",
                        "--symmetric", *armour, "-o", str(out), str(tmp_path / "scan.dcm")], env=env,
                       check=True, capture_output=True)
        body = out.read_bytes()
        if armour:
            body = b"Here is the scan you asked for:\n\n" + body
            with pytest.raises(Blocked) as info:
                walk("text/plain", body)
            assert info.value.reason is BlockReason.UNINSPECTABLE
        else:
            assert refused(body) is BlockReason.UNINSPECTABLE
    salted = subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-pass", "pass:x", "-in",
                             str(tmp_path / "scan.dcm")], check=True, capture_output=True).stdout
    assert refused(salted) is BlockReason.UNINSPECTABLE
