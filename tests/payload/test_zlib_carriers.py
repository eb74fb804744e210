"""zlib streams inside other formats (issue 12, red team).

A zlib stream has no magic number, only zlib's two-byte header; it is the
compressed carrier inside PDF attachments (F15), git packfiles (F24) and
squashfs images (F22). Their own tools (pdfdetach, git, unsquashfs) read the
object back, and so does a carving tool from the header. Each case passed the
old code; the receiver's own reading, run in the test, shows the object is
there.
"""

from __future__ import annotations

import io
import random
import subprocess
import zlib

import pytest

from icapdlp.payload.options import PayloadOptions
from icapdlp.payload.walker import passes_unopened
from icapdlp.verdict import BlockReason, Blocked
from tests.payload.helpers import walk
from tests.payload.test_behind_a_prefix import junk
from tests.support.synthetic import make_ct

DCM = make_ct(61).data


def refused(content_type: str | None, body: bytes) -> BlockReason:
    with pytest.raises(Blocked) as info:
        walk(content_type, body)
    assert not passes_unopened(content_type, [], body, PayloadOptions())
    return info.value.reason


# -- any zlib stream behind other bytes --------------------------------------------------------

@pytest.mark.parametrize("level", [1, 4, 6, 9])
def test_a_zlib_stream_behind_a_prefix_is_refused(level):
    """Each level writes its own header (78 01 / 5e / 9c / da); a carving tool finds all four."""
    stream = zlib.compress(DCM, level)
    body = junk(333) + stream + junk(200, seed=2)
    assert zlib.decompressobj().decompress(body[333:]) == DCM  # (what the carving reader writes)
    assert refused("application/octet-stream", body) is BlockReason.UNINSPECTABLE


def test_a_zlib_stream_of_ordinary_data_passes():
    """A PNG-like body: its image data is a zlib stream of no DICOM."""
    raster = bytes(random.Random(3).choice(b"\x00\x10\x80\xff") for _ in range(30000))
    body = b"\x89PNG\r\n\x1a\n" + junk(25) + zlib.compress(raster) + junk(12, seed=3)
    assert walk("image/png", body)[0].body is body
    assert passes_unopened("image/png", [], body, PayloadOptions())


def test_random_binary_still_passes_from_the_probe():
    """Random bytes show a zlib header about 64 times per MiB; none gets past the decoder's first bytes."""
    rng = random.Random(14)
    assert all(passes_unopened("application/octet-stream", [], rng.randbytes(256 * 1024), PayloadOptions())
               for _ in range(16))


# -- F15: a PDF attachment -----------------------------------------------------------------------

def _qpdf_attachment(tmp_path, extra=()) -> bytes:
    (tmp_path / "scan.dcm").write_bytes(DCM)
    subprocess.run(["qpdf", "--empty", *extra, "--add-attachment", "scan.dcm", "--", "out.pdf"],
                   cwd=tmp_path, check=True, capture_output=True)
    return (tmp_path / "out.pdf").read_bytes()


def _detached(tmp_path, body: bytes) -> bytes:
    (tmp_path / "in.pdf").write_bytes(body)
    (tmp_path / "out").mkdir()
    subprocess.run(["pdfdetach", "-saveall", "-o", "out", "in.pdf"], cwd=tmp_path, capture_output=True)
    return (tmp_path / "out" / "scan.dcm").read_bytes()


@pytest.mark.parametrize("extra", [(), ("--object-streams=generate",)], ids=["plain", "object-streams"])
def test_a_dicom_file_attached_to_a_pdf_is_refused(tmp_path, extra):
    body = _qpdf_attachment(tmp_path, extra)
    assert b"DICM" not in body and _detached(tmp_path, body) == DCM
    assert refused("application/pdf", body) is BlockReason.UNINSPECTABLE


def _hand_written_pdf(stream: bytes) -> bytes:
    """A minimal PDF with one embedded-file stream (pdfdetach reads it through the name tree)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(scan.dcm) 4 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [] /Count 0 >>",
        b"<< /Type /EmbeddedFile /Filter /FlateDecode /Length %d >>\nstream\n" % len(stream) + stream
        + b"\nendstream",
        b"<< /Type /Filespec /F (scan.dcm) /UF (scan.dcm) /EF << /F 3 0 R >> >>",
    ]
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, content in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + content + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_pdf_stream_with_a_smaller_window_header_is_refused(tmp_path):
    """A header no carving tool looks for (window 16 KiB: 68 xx): the PDF reader decodes it all the same."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 14)
    stream = compressor.compress(DCM) + compressor.flush()
    assert stream[0] == 0x68
    body = _hand_written_pdf(stream)
    assert _detached(tmp_path, body) == DCM
    assert refused("application/pdf", body) is BlockReason.UNINSPECTABLE


def test_a_pdf_without_dicom_passes(tmp_path):
    body = _hand_written_pdf(zlib.compress(b"%% an ordinary attachment: a text note\n" * 200))
    assert walk("application/pdf", body)[0].body is body


# -- F24: a git push (packfile of zlib objects) --------------------------------------------------

def test_a_git_push_of_a_dicom_blob_is_refused(tmp_path):
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "scan.dcm").write_bytes(DCM)
    blob = subprocess.run(["git", "hash-object", "-w", "scan.dcm"], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()
    pack = subprocess.run(["git", "pack-objects", "--stdout", "-q"], cwd=repo, input=blob.encode() + b"\n",
                          check=True, capture_output=True).stdout
    command = b"%s %s refs/heads/main\0 report-status\n" % (b"0" * 40, b"1" * 40)
    body = b"%04x" % (len(command) + 4) + command + b"0000" + pack
    # the receiver: git reads the pack back into a fresh repository and gives the blob
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", "--bare", str(other)], check=True)
    subprocess.run(["git", "unpack-objects", "-q"], cwd=other, input=pack, check=True)
    assert subprocess.run(["git", "cat-file", "blob", blob], cwd=other, check=True,
                          capture_output=True).stdout == DCM
    assert refused("application/x-git-receive-pack-request", body) is BlockReason.UNINSPECTABLE


# -- F22: a squashfs image (gzip compressor: zlib blocks) ----------------------------------------

def test_a_squashfs_image_holding_dicom_is_refused(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "scan.dcm").write_bytes(DCM)
    subprocess.run(["mksquashfs", "src", "img", "-comp", "gzip", "-noappend", "-quiet"], cwd=tmp_path,
                   check=True, capture_output=True)
    body = (tmp_path / "img").read_bytes()
    subprocess.run(["unsquashfs", "-q", "-d", "out", "img"], cwd=tmp_path, check=True, capture_output=True)
    assert (tmp_path / "out" / "scan.dcm").read_bytes() == DCM
    assert refused("application/octet-stream", body) is BlockReason.UNINSPECTABLE


def test_a_pdf_with_many_ordinary_streams_passes():
    """Pages, fonts and images: hundreds of streams, each decoded once and read in place."""
    rng = random.Random(15)
    objects = [b"%d 0 obj\n<< /Filter /FlateDecode >>\nstream\n" % number
               + zlib.compress(b"BT /F1 12 Tf (%d) Tj ET\n" % number * rng.randrange(20, 200))
               + b"\nendstream\nendobj\n" for number in range(1, 400)]
    body = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n" + b"".join(objects) + b"%%EOF\n"
    assert walk("application/pdf", body)[0].body is body


def test_a_zlib_stream_is_read_in_place_to_its_end():
    from icapdlp.payload.carving import inflate_zlib

    data = b"an ordinary record\n" * 5000
    stream = zlib.compress(data)
    body = junk(77) + stream + junk(70_000, seed=4)
    assert inflate_zlib(body, 77, 1 << 20) == (data, 77 + len(stream), len(stream))
    damaged = body[:77 + len(stream) // 2]
    out, end, _ = inflate_zlib(damaged, 77, 1 << 20)
    assert data.startswith(out) and end is None
    with pytest.raises(Blocked) as info:
        inflate_zlib(body, 77, 1000)
    assert info.value.reason is BlockReason.LIMIT_EXCEEDED


def test_a_dicom_file_in_a_png_text_chunk_is_refused():
    """zTXt holds its text as a zlib stream; Pillow hands the chunk back as a latin-1 string."""
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("scan", DCM.decode("latin-1"), zip=True)
    out = io.BytesIO()
    Image.new("L", (8, 8)).save(out, "PNG", pnginfo=info)
    body = out.getvalue()
    assert b"DICM" not in body
    assert Image.open(io.BytesIO(body)).text["scan"].encode("latin-1") == DCM
    assert refused("image/png", body) is BlockReason.UNINSPECTABLE
