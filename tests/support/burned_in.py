"""Synthetic burned-in text: DICOM images with PHI and labels drawn into the pixels.

Every image is generated at test time from a seed (no binary fixtures). The
header carries synthetic patient values; the same values, in the renderings
real devices use, are drawn into the pixel data with PIL in DejaVu and
Liberation fonts, 10-40 px, light-on-dark and dark-on-light, on a noisy
background. The ground truth is the tight ink box of each drawn string, so
tests and the benchmark can measure coverage, readability and collateral
damage exactly.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
FONT_FILES = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSansMono.ttf", "DejaVuSerif.ttf",
    "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf", "LiberationMono-Regular.ttf",
    "LiberationSerif-Regular.ttf", "LiberationSansNarrow-Regular.ttf",
)

FIRST_NAMES = ("John", "Maria", "Robert", "Linda", "James", "Patricia", "Michael", "Elena", "David", "Susan")
LAST_NAMES = ("Smith", "Garcia", "Johnson", "Miller", "Davis", "Wilson", "Anderson", "Thompson", "Martinez",
              "Robinson")
INSTITUTIONS = ("Springfield General Hospital", "Mercy Medical Center", "Riverside Clinic",
                "Saint Anne Hospital", "Lakeside Imaging Center")
CITIES = ("Boston", "Chicago", "Denver", "Seattle", "Houston", "Phoenix", "Portland", "Atlanta")
#: allow-listed labels that must stay readable (all in PixelOptions.allow_words)
LABELS = ("AP", "PA", "LAT", "SUPINE", "LEFT", "RIGHT", "kVp", "mAs", "cm", "MHz", "TIS", "PRONE")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

#: transfer syntaxes the generator can write. No installed package encodes JPEG Lossless
#: (pylibjpeg-libjpeg decodes only, Pillow writes 8-bit DCT only, pyjpegls is JPEG-LS), so
#: JPEG Lossless SV1 (process 14, grey) is written by :func:`jpeg_lossless_sv1` below; 12-bit
#: JPEG Extended (process 2 & 4, a DCT codec) is still not generated
WRITABLE_SYNTAXES = (ExplicitVRLittleEndian, RLELossless, JPEGBaseline8Bit, JPEGLosslessSV1, JPEGLSLossless,
                     JPEGLSNearLossless, JPEG2000Lossless, JPEG2000)

#: JPEG Lossless Huffman table: the 17 difference categories (0-16), each a 5-bit code. Not
#: optimal, but valid (no all-ones code), and the test only needs a decodable, lossless stream
_SV1_CODE_BITS = 5


@dataclass(frozen=True)
class TruthBox:
    """One drawn string: what, why it matters, and its tight ink box (x0, y0, x1, y1 exclusive)."""

    text: str
    kind: str  # "phi" (must be redacted) or "label" (must stay readable)
    box: tuple[int, int, int, int]


@dataclass
class SyntheticCase:
    """A generated DICOM dataset, its ground truth, and the values it was made from."""

    dataset: Dataset
    truth: list[TruthBox]
    header: dict[str, str] = field(default_factory=dict)

    @property
    def phi(self) -> list[TruthBox]:
        return [t for t in self.truth if t.kind == "phi"]

    @property
    def labels(self) -> list[TruthBox]:
        return [t for t in self.truth if t.kind == "label"]


def _font(rng: random.Random, size: int) -> ImageFont.FreeTypeFont:
    name = rng.choice(FONT_FILES)
    for d in FONT_DIRS:
        p = Path(d) / name
        if p.exists():
            return ImageFont.truetype(str(p), size)
    raise FileNotFoundError(name)


def _patient(rng: random.Random) -> dict[str, str]:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    ref_first, ref_last = rng.choice(FIRST_NAMES), rng.choice([n for n in LAST_NAMES if n != last])
    y, m, d = rng.randint(1935, 2005), rng.randint(1, 12), rng.randint(1, 28)
    sy, sm, sd = rng.randint(2015, 2025), rng.randint(1, 12), rng.randint(1, 28)
    return {
        "first": first, "last": last, "ref_first": ref_first, "ref_last": ref_last,
        "PatientName": f"{last.upper()}^{first.upper()}",
        "ReferringPhysicianName": f"{ref_last}^{ref_first}",
        "PatientID": "".join(rng.choice("0123456789") for _ in range(rng.randint(6, 9))),
        "AccessionNumber": "A" + "".join(rng.choice("0123456789") for _ in range(7)),
        "PatientBirthDate": f"{y:04d}{m:02d}{d:02d}",
        "StudyDate": f"{sy:04d}{sm:02d}{sd:02d}",
        "InstitutionName": rng.choice(INSTITUTIONS),
        "city": rng.choice(CITIES),
    }


def _render_date(rng: random.Random, da: str) -> str:
    y, m, d = da[:4], da[4:6], da[6:]
    return rng.choice((
        f"{y}{m}{d}", f"{y}-{m}-{d}", f"{d}/{m}/{y}", f"{m}/{d}/{y}", f"{d}.{m}.{y}",
        f"{d}-{MONTHS[int(m) - 1]}-{y}",
    ))


def _phi_strings(rng: random.Random, p: dict[str, str]) -> list[str]:
    first, last = p["first"], p["last"]
    name = rng.choice((f"{last.upper()}, {first.upper()}", f"{first} {last}", p["PatientName"],
                       f"{last.upper()} {first.upper()}", f"{first.upper()} {last.upper()}"))
    out = [name, p["PatientID"], _render_date(rng, p["PatientBirthDate"])]
    out += rng.sample([p["AccessionNumber"], _render_date(rng, p["StudyDate"]), p["InstitutionName"],
                       p["city"], f"{p['ref_first']} {p['ref_last']}"], 3)
    return out


def _background(rng: random.Random, rows: int, cols: int, noise: float) -> np.ndarray:
    """A dark 'anatomy' blob with a gradient and Gaussian noise, values in [0, 1]."""
    nr = np.random.default_rng(rng.randint(0, 2**31))
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows * rng.uniform(0.4, 0.6), cols * rng.uniform(0.4, 0.6)
    r2 = ((yy - cy) / (rows * 0.35)) ** 2 + ((xx - cx) / (cols * 0.35)) ** 2
    img = 0.05 + 0.35 * np.exp(-r2 * 2.0) + 0.05 * (xx / cols)
    img += nr.normal(0.0, noise, size=img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0)


def _place(rng: random.Random, taken: list[tuple[int, int, int, int]], w: int, h: int,
           rows: int, cols: int) -> tuple[int, int] | None:
    margin = 6
    for _ in range(200):
        x = rng.randint(margin, max(margin, cols - w - margin))
        y = rng.randint(margin, max(margin, rows - h - margin))
        box = (x - margin, y - margin, x + w + margin, y + h + margin)
        if x + w + margin <= cols and y + h + margin <= rows and not any(
            box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in taken
        ):
            taken.append(box)
            return x, y
    return None


def render_text_image(seed: int, rows: int = 480, cols: int = 640, *, font_px: tuple[int, int] = (14, 32),
                      n_labels: int = 3, noise: float = 0.03, dark_on_light: float = 0.3,
                      header: dict[str, str] | None = None) -> tuple[np.ndarray, list[TruthBox], dict[str, str]]:
    """Grey image in [0, 1] with PHI strings and labels drawn, plus ground-truth boxes."""
    rng = random.Random(seed)
    p = header or _patient(rng)
    img = _background(rng, rows, cols, noise)
    truth: list[TruthBox] = []
    taken: list[tuple[int, int, int, int]] = []
    items = [(s, "phi") for s in _phi_strings(rng, p)] + [(s, "label") for s in rng.sample(LABELS, n_labels)]
    for text, kind in items:
        size = rng.randint(*font_px)
        font = _font(rng, size)
        x0, y0, x1, y1 = font.getbbox(text)
        w, h = x1 - x0, y1 - y0
        if w >= cols - 12 or h >= rows - 12:
            continue
        pos = _place(rng, taken, w, h, rows, cols)
        if pos is None:
            continue
        mask_img = Image.new("L", (w, h), 0)
        ImageDraw.Draw(mask_img).text((-x0, -y0), text, font=font, fill=255)
        mask = np.asarray(mask_img, dtype=np.float32) / 255.0
        x, y = pos
        region = img[y:y + h, x:x + w]
        if rng.random() < dark_on_light:
            # a light label plate behind dark text, as on scanned forms and dose screens
            pad = max(2, size // 5)
            img[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad] = rng.uniform(0.8, 0.95)
            region = img[y:y + h, x:x + w]
            ink = rng.uniform(0.0, 0.15)
        else:
            ink = rng.uniform(0.75, 1.0)
        img[y:y + h, x:x + w] = region * (1 - mask) + ink * mask
        ys, xs = np.nonzero(mask > 0.25)
        if len(xs):
            truth.append(TruthBox(text, kind, (x + int(xs.min()), y + int(ys.min()),
                                               x + int(xs.max()) + 1, y + int(ys.max()) + 1)))
    return img, truth, p


def _base_dataset(p: dict[str, str], modality: str, sop_class: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = modality
    ds.PatientName = p["PatientName"]
    ds.PatientID = p["PatientID"]
    ds.PatientBirthDate = p["PatientBirthDate"]
    ds.StudyDate = p["StudyDate"]
    ds.AccessionNumber = p["AccessionNumber"]
    ds.InstitutionName = p["InstitutionName"]
    ds.ReferringPhysicianName = p["ReferringPhysicianName"]
    ds.BurnedInAnnotation = "YES"
    return ds


def _to_rgb(grey: np.ndarray, rng: random.Random) -> np.ndarray:
    tint = np.array([rng.uniform(0.8, 1.0), rng.uniform(0.8, 1.0), rng.uniform(0.6, 1.0)], dtype=np.float32)
    return np.clip(grey[..., None] * tint, 0, 1)


def _rgb_to_ybr(rgb: np.ndarray) -> np.ndarray:
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b + 128
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b + 128
    return np.clip(np.round(np.stack([y, cb, cr], axis=-1)), 0, 255).astype(np.uint8)


def make_case(seed: int, *, photometric: str = "MONOCHROME2", bits_stored: int = 8, signed: bool = False,
              frames: int = 1, transfer_syntax: str = ExplicitVRLittleEndian, planar: int = 0,
              rows: int = 480, cols: int = 640, modality: str = "US", font_px: tuple[int, int] = (14, 32),
              noise: float = 0.03, n_labels: int = 3, dark_on_light: float = 0.3) -> SyntheticCase:
    """A complete DICOM dataset with burned-in synthetic PHI, encoded as asked.

    Multi-frame cases repeat the text on every frame over a changing background, as a cine
    loop does; the ground truth holds for every frame.
    """
    rng = random.Random(seed * 7919 + 1)
    grey, truth, p = render_text_image(seed, rows, cols, font_px=font_px, noise=noise, n_labels=n_labels,
                                       dark_on_light=dark_on_light)
    sop = UltrasoundMultiFrameImageStorage if frames > 1 else SecondaryCaptureImageStorage
    ds = _base_dataset(p, modality, sop)
    ds.Rows, ds.Columns = rows, cols
    text_mask = np.zeros((rows, cols), dtype=bool)
    for t in truth:
        text_mask[t.box[1]:t.box[3], t.box[0]:t.box[2]] = True
    frame_list = []
    for f in range(frames):
        g = grey.copy()
        if f:  # cine: background moves a little, burned-in text stays
            shift = np.roll(grey, f * 3, axis=1)
            g = np.where(text_mask, grey, shift)
        frame_list.append(g)
    stack = np.stack(frame_list)

    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        maxv = (1 << bits_stored) - 1
        vals = np.round(stack * maxv).astype(np.int64)
        if photometric == "MONOCHROME1":
            vals = maxv - vals
        if signed:
            vals -= 1 << (bits_stored - 1)
        alloc = 8 if bits_stored <= 8 else 16
        dtype = {(8, False): np.uint8, (8, True): np.int8, (16, False): np.uint16, (16, True): np.int16}[
            (alloc, signed)]
        arr = vals.astype(dtype)
        spp = 1
    elif photometric in ("RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR"):
        bits_stored, alloc, signed = 8, 8, False
        rgb = np.round(_to_rgb(stack, rng) * 255).astype(np.uint8)
        if photometric == "PALETTE COLOR":
            arr = np.round(stack * 255).astype(np.uint8)
            spp = 1
        elif photometric == "YBR_FULL":
            arr = _rgb_to_ybr(rgb)
            spp = 3
        else:
            arr = rgb
            spp = 3
    else:
        raise ValueError(photometric)

    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = alloc, bits_stored, bits_stored - 1
    ds.PixelRepresentation = int(signed)
    if spp == 3:
        ds.PlanarConfiguration = planar
    if frames > 1:
        ds.NumberOfFrames = frames
        ds.FrameIncrementPointer = 0x00181063
        ds.FrameTime = 33.3
    if photometric == "PALETTE COLOR":
        ramp = np.arange(256, dtype=np.uint16) * 257
        ds.RedPaletteColorLookupTableDescriptor = [256, 0, 16]
        ds.GreenPaletteColorLookupTableDescriptor = [256, 0, 16]
        ds.BluePaletteColorLookupTableDescriptor = [256, 0, 16]
        ds.RedPaletteColorLookupTableData = ramp.tobytes()
        ds.GreenPaletteColorLookupTableData = (ramp * 0.9).astype(np.uint16).tobytes()
        ds.BluePaletteColorLookupTableData = (ramp * 0.7).astype(np.uint16).tobytes()

    out = arr if frames > 1 else arr[0]
    _encode(ds, out, transfer_syntax, photometric, rng)
    return SyntheticCase(ds, truth, p)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload


def jpeg_lossless_sv1(frame: np.ndarray, precision: int) -> bytes:
    """One grey frame as a JPEG Lossless, first-order prediction (process 14, SV1) codestream.

    ITU-T T.81 Annex H: each sample is predicted by its left neighbour (the
    first row by its left, the first column by the sample above, the first
    sample by 2^(P-1)); the difference is coded as its bit-length category
    (Huffman) followed by that many bits, ones' complement when negative.
    """
    x = frame.astype(np.int64)
    rows, cols = x.shape
    pred = np.empty_like(x)
    pred[0, 0] = 1 << (precision - 1)
    pred[0, 1:] = x[0, :-1]
    pred[1:, 0] = x[:-1, 0]
    pred[1:, 1:] = x[1:, :-1]
    diff = ((x - pred + 32768) % 65536 - 32768).ravel()
    magnitude = np.abs(diff)
    ssss = np.ceil(np.log2(magnitude + 1)).astype(np.int64)
    extra = np.where(diff >= 0, diff, diff + (1 << ssss) - 1) & ((1 << ssss) - 1)
    extra = np.where(ssss == 16, 0, extra)  # category 16 (difference 32768) has no extra bits
    lengths = _SV1_CODE_BITS + np.where(ssss == 16, 0, ssss)
    values = (ssss << (lengths - _SV1_CODE_BITS)) | extra
    width = _SV1_CODE_BITS + 16
    bits = (values[:, None] >> np.arange(width - 1, -1, -1)) & 1
    bits = bits[np.arange(width)[None, :] >= (width - lengths)[:, None]].astype(np.uint8)
    bits = np.concatenate([bits, np.ones((-len(bits)) % 8, dtype=np.uint8)])  # pad with 1-bits
    scan = np.packbits(bits)
    scan = np.insert(scan, np.flatnonzero(scan == 0xFF) + 1, 0)  # byte stuffing
    counts = [0] * 16
    counts[_SV1_CODE_BITS - 1] = 17
    return b"".join([
        b"\xff\xd8",
        _segment(0xC3, bytes([precision]) + rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + bytes([1, 1, 0x11, 0])),
        _segment(0xC4, bytes([0x00] + counts + list(range(17)))),
        _segment(0xDA, bytes([1, 1, 0x00, 1, 0, 0])),  # 1 component, table 0, Ss=1 (predictor), Se=0, Pt=0
        scan.tobytes(),
        b"\xff\xd9",
    ])


def _encode(ds: Dataset, arr: np.ndarray, ts: str, photometric: str, rng: random.Random) -> None:
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    if ds.SamplesPerPixel == 3 and getattr(ds, "PlanarConfiguration", 0) == 1:
        planes = np.moveaxis(arr, -1, -3)  # (..., 3, rows, cols)
        ds.PixelData = np.ascontiguousarray(planes).tobytes()
    else:
        ds.PixelData = np.ascontiguousarray(arr).tobytes()
    if ts == ExplicitVRLittleEndian:
        return
    frames = arr if int(getattr(ds, "NumberOfFrames", 1)) > 1 else arr[None]
    if ts == JPEGBaseline8Bit:
        if ds.BitsAllocated != 8:
            raise ValueError("JPEG baseline needs 8-bit data")
        pieces = []
        for fr in frames:
            mode = "RGB" if ds.SamplesPerPixel == 3 else "L"
            buf = io.BytesIO()
            Image.fromarray(fr, mode).save(buf, "JPEG", quality=92, subsampling=1 if mode == "RGB" else 0)
            pieces.append(buf.getvalue())
        ds.PixelData = encapsulate(pieces)
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        if ds.SamplesPerPixel == 3:
            ds.PhotometricInterpretation = "YBR_FULL_422"
            ds.PlanarConfiguration = 0
        ds.LossyImageCompression = "01"
        ds.LossyImageCompressionRatio = 10.0
        ds.LossyImageCompressionMethod = "ISO_10918_1"
        return
    if ts == JPEGLosslessSV1:
        if ds.SamplesPerPixel != 1 or ds.PixelRepresentation:
            raise ValueError("the JPEG Lossless writer takes unsigned grey data")
        ds.PixelData = encapsulate([jpeg_lossless_sv1(fr, int(ds.BitsStored)) for fr in frames])
        ds["PixelData"].VR = "OB"
        ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
        return
    kwargs = {}
    if ts == JPEGLSNearLossless:
        kwargs["jls_error"] = 2
    if ts == JPEG2000:
        kwargs["j2k_cr"] = [8]
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
        ds.PixelData = np.ascontiguousarray(arr).tobytes()
    ds.compress(ts, arr, generate_instance_uid=False, **kwargs)
    if ts in (JPEGLSNearLossless, JPEG2000):
        ds.LossyImageCompression = "01"


def to_bytes(ds: Dataset) -> bytes:
    """Part-10 bytes of a dataset, as a file on the wire would be."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def from_bytes(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data))
