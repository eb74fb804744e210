"""An independent burned-in text set: images the cleaner was never tuned on, with truth boxes.

Written apart from :mod:`tests.support.burned_in` (whose placement the cleaner
was tuned against) so that the benchmark's recall is not a self-portrait. It
draws with Debian's fonts (serif, monospace, condensed, bold; DejaVu and
Liberation), 8-40 px, in the ways burned-in text appears on real modalities:
white on black, black on white, over anatomy, low contrast (10-20 stored
levels on 12- and 16-bit data), rotated 90 and 270 degrees (side labels),
through a lossy JPEG round trip, ultrasound banners, and on every frame or
only some frames of a cine. PHI of every kind a radiology image carries is
drawn, some matching the header and some not, beside non-PHI labels, and
text-free images (anatomy, photographs, noise) measure false boxes.

Everything is a function of the seed. Truth boxes are the ink's bounding box
(every pixel the glyphs touched) in frame coordinates; a case's ``truth``
lists every drawn item, ``frame`` None meaning every frame.
"""

from __future__ import annotations

import io
import random
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
#: font families by look, from fonts-dejavu-core and fonts-liberation (tools/bootstrap.sh)
FONTS = {
    "serif": ("DejaVuSerif.ttf", "LiberationSerif-Regular.ttf"),
    "mono": ("DejaVuSansMono.ttf", "LiberationMono-Regular.ttf"),
    "condensed": ("DejaVuSansCondensed.ttf", "LiberationSansNarrow-Regular.ttf", "DejaVuSerifCondensed.ttf"),
    "bold": ("DejaVuSans-Bold.ttf", "LiberationSans-Bold.ttf", "LiberationMono-Bold.ttf"),
    "sans": ("LiberationSans-Regular.ttf", "DejaVuSans.ttf"),
}
SIZES = (8, 10, 12, 14, 16, 18, 20, 24, 28, 32, 40)
#: styles of text images, and the kinds of text-free images
TEXT_STYLES = ("white-on-black", "black-on-white", "over-anatomy", "low-contrast", "rotated", "jpeg-lossy",
               "us-banner", "some-frames")
EMPTY_STYLES = ("empty-anatomy", "empty-photo", "empty-noise")
SIZE_BINS = ((8, 11), (12, 15), (16, 23), (24, 40))
#: (phi kind, drawn text, header attribute it can match)
SOURCE_SOP = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4",
              "CR": "1.2.840.10008.5.1.4.1.1.1", "DX": "1.2.840.10008.5.1.4.1.1.1.1",
              "XA": "1.2.840.10008.5.1.4.1.1.12.1", "US": "1.2.840.10008.5.1.4.1.1.6.1",
              "SC": "1.2.840.10008.5.1.4.1.1.7", "XC": "1.2.840.10008.5.1.4.1.1.77.1.4"}

SURNAMES = ("Okonkwo", "Lindqvist", "Brandt", "Moreau", "Castellano", "Nakamura", "Fitzgerald", "Kowalczyk",
            "Van Dijk", "Haddad", "Oyelaran", "Petrova", "Sorensen", "Achterberg", "Duarte", "Whitcombe")
GIVEN = ("Samuel", "Ingrid", "Klaus", "Amelie", "Lucia", "Haruto", "Siobhan", "Tomasz", "Pieter", "Layla",
         "Adaeze", "Irina", "Mette", "Joost", "Rafael", "Edith")
TITLES = ("Dr", "Dr.", "Prof.", "Prof. Dr.", "Dr. med.", "Dott.", "Pr", "Dra.", "Drs.")
INSTITUTIONS = ("{} Medical Center", "{} Royal Infirmary", "Kliniek {}", "Klinikum {}", "Hôpital {}",
                "{} General Hospital", "{} Clinic", "Ospedale {}", "{} Ziekenhuis", "Hospital {}")
PLACES = ("Harrowgate", "Zuiderpark", "Saint-Roch", "Nordstadt", "Glenmore", "Westerkade", "San Marco",
          "Ashbourne", "Belvedere", "Kingsmere", "Elmhurst", "Rosenthal")
CITIES = ("Rotterdam", "Leeds", "Lyon", "Tampere", "Porto", "Bologna", "Dresden", "Cork", "Utrecht", "Seville",
          "Gdansk", "Aberdeen", "Toulouse", "Bergen")
MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
MONTHS_FULL = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "de": ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
           "November", "Dezember"),
    "fr": ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"),
    "nl": ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"),
    "es": ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
           "noviembre", "diciembre"),
}
NON_PHI = ("L", "R", "PORTABLE", "SUPINE", "ERECT", "kVp 120", "mAs 250", "120 kV", "T2 FLAIR", "AX T1 SE",
           "DWI b1000", "SAG T2 FSE", "5 cm", "W 400 L 40", "Gain 52 dB", "Depth 16 cm", "AP", "LAT",
           "STIR COR", "C+", "1.25 mm")


@dataclass(frozen=True)
class Truth:
    """One drawn item: PHI (``phi_kind`` set) or non-PHI text, and the frames it is on."""

    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1, half-open, frame coordinates
    phi_kind: str | None  # None: non-PHI label that must be kept
    header_matched: bool
    size: int
    font: str
    frame: int | None = None  # None: every frame


@dataclass
class Case:
    """A generated object, its truth, and the style it exercises."""

    name: str
    dataset: Dataset
    style: str
    truth: list[Truth] = field(default_factory=list)

    @property
    def text_free(self) -> bool:
        return self.style in EMPTY_STYLES


@lru_cache(maxsize=256)
def _font(file: str, size: int) -> ImageFont.FreeTypeFont:
    for folder in FONT_DIRS:
        if (folder / file).exists():
            return ImageFont.truetype(str(folder / file), size)
    raise FileNotFoundError(f"font {file} is not installed (fonts-dejavu-core, fonts-liberation)")


def size_bin(size: int) -> str:
    for lo, hi in SIZE_BINS:
        if lo <= size <= hi:
            return f"{lo}-{hi} px"
    return f"{size} px"


# -- PHI values ---------------------------------------------------------------------------------

@dataclass
class Person:
    surname: str
    given: str
    patient_id: str
    accession: str
    birth: tuple[int, int, int]  # y, m, d
    study: tuple[int, int, int]
    physician: tuple[str, str]  # surname, given
    institution: str
    city: str


def _person(rng: random.Random) -> Person:
    surname, given = rng.choice(SURNAMES), rng.choice(GIVEN)
    phys = (rng.choice([s for s in SURNAMES if s != surname]), rng.choice(GIVEN))
    pid = rng.choice([
        lambda: f"HX{rng.randrange(10**6, 10**7)}",
        lambda: f"{rng.randrange(10**7, 10**8)}",
        lambda: f"P{rng.randrange(10**5, 10**6)}-{rng.randrange(10, 99)}",
    ])()
    return Person(surname, given, pid, f"A{rng.randrange(2015, 2026)}-{rng.randrange(10000, 99999)}",
                  (rng.randrange(1930, 2015), rng.randrange(1, 13), rng.randrange(1, 29)),
                  (rng.randrange(2015, 2026), rng.randrange(1, 13), rng.randrange(1, 29)),
                  phys, rng.choice(INSTITUTIONS).format(rng.choice(PLACES)), rng.choice(CITIES))


def _date_text(rng: random.Random, ymd: tuple[int, int, int]) -> str:
    y, m, d = ymd
    forms = [f"{d:02d}-{MONTHS_EN[m - 1]}-{y}", f"{d:02d}/{m:02d}/{y}", f"{m:02d}/{d:02d}/{y}", f"{y}-{m:02d}-{d:02d}",
             f"{d:02d}.{m:02d}.{y}", f"{d} {MONTHS_EN[m - 1]} {y}", f"{y}/{m:02d}/{d:02d}"]
    lang = rng.choice(sorted(MONTHS_FULL))
    forms.append(f"{d} {MONTHS_FULL[lang][m - 1]} {y}")
    return rng.choice(forms)


def _phone(rng: random.Random) -> str:
    return rng.choice([
        lambda: f"+44 113 496 {rng.randrange(1000, 9999)}",
        lambda: f"(555) {rng.randrange(200, 999)}-{rng.randrange(1000, 9999)}",
        lambda: f"+31 10 {rng.randrange(100, 999)} {rng.randrange(1000, 9999)}",
        lambda: f"020 7946 {rng.randrange(1000, 9999)}",
        lambda: f"+49 30 {rng.randrange(1000000, 9999999)}",
    ])()


def _ssn(rng: random.Random) -> str:
    return f"{rng.randrange(101, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}"


def _phi_items(rng: random.Random, p: Person, header_match: bool) -> list[tuple[str, str, str, bool]]:
    """(phi kind, label prefix or "", value, header-matched) for the items drawn on one image."""
    title = rng.choice(TITLES)
    initial = p.physician[1][0] + "."
    items = [
        ("patient-name", "", rng.choice([f"{p.surname.upper()}, {p.given}", f"{p.given} {p.surname}",
                                         f"{p.surname.upper()} {p.given.upper()}"]), header_match),
        ("patient-id", rng.choice(["", "ID:", "PID"]), p.patient_id, header_match),
        ("birth-date", rng.choice(["DOB", "DOB:", "Born"]), _date_text(rng, p.birth), header_match),
        ("study-date", "", _date_text(rng, p.study), header_match),
        ("physician", "", rng.choice([f"{title} {initial} {p.physician[0]}", f"{title} {p.physician[0]}",
                                      f"{title} {p.physician[1]} {p.physician[0]}"]), False),
        ("institution", "", p.institution, header_match and rng.random() < 0.5),
        ("city", "", p.city, False),
        ("mrn", "", rng.choice([f"MRN-{rng.randrange(10**7, 10**8):08d}", f"MRN: {rng.randrange(10**6, 10**7)}"]),
         False),
        ("accession", rng.choice(["ACC:", "Acc#", "Accession"]), p.accession, header_match),
        ("phone", rng.choice(["", "Tel", "Ph:"]), _phone(rng), False),
        ("ssn", rng.choice(["SSN", "SSN:"]), _ssn(rng), False),
        ("email", "", f"{p.physician[1][0].lower()}.{p.physician[0].lower().replace(' ', '')}@"
                      f"{rng.choice(PLACES).lower().replace(' ', '')}-hosp.org", False),
    ]
    return items


def _header(p: Person, modality: str, header_match: bool, rng: random.Random) -> Dataset:
    """The object's header: values of the drawn PHI when ``header_match``, other values otherwise."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    sop = SOURCE_SOP[modality]
    ds.file_meta.MediaStorageSOPClassUID = sop
    uid = generate_uid(entropy_srcs=[str(rng.random())])
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPClassUID, ds.SOPInstanceUID = sop, uid
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[str(rng.random())])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[str(rng.random())])
    ds.Modality = modality
    if header_match:
        ds.PatientName = f"{p.surname.upper()}^{p.given.upper()}"
        ds.PatientID = p.patient_id
        ds.PatientBirthDate = "%04d%02d%02d" % p.birth
        ds.StudyDate = "%04d%02d%02d" % p.study
        ds.AccessionNumber = p.accession
        ds.InstitutionName = p.institution
    else:  # a header from a different system: nothing drawn can be matched against it
        ds.PatientName = "ANON^SUBJECT"
        ds.PatientID = "X0"
        ds.StudyDate = "20000101"
    ds.ReferringPhysicianName = f"{p.physician[0].upper()}^{p.physician[1].upper()}"  # spelled otherwise
    ds.BurnedInAnnotation = "YES"
    return ds


# -- backgrounds ------------------------------------------------------------------------------

def _smooth_noise(rng: np.random.Generator, rows: int, cols: int, cells: int) -> np.ndarray:
    """Low-frequency texture in [0, 1]: random cells upscaled smoothly."""
    small = rng.random((max(2, rows // cells), max(2, cols // cells))).astype(np.float32)
    img = Image.fromarray(small).resize((cols, rows), Image.Resampling.BICUBIC)
    a = np.asarray(img, dtype=np.float32)
    return (a - a.min()) / max(1e-6, float(a.max() - a.min()))


def anatomy(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A body-like texture in [0, 1]: an ellipse of tissue, bright bone-like blobs, fine grain, air around."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cy, cx = rows * rng.uniform(0.45, 0.55), cols * rng.uniform(0.45, 0.55)
    ry, rx = rows * rng.uniform(0.3, 0.42), cols * rng.uniform(0.3, 0.42)
    body = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1.0
    tissue = 0.35 + 0.25 * _smooth_noise(rng, rows, cols, 24) + 0.08 * _smooth_noise(rng, rows, cols, 4)
    img = np.where(body, tissue, 0.02 + 0.02 * rng.random((rows, cols), dtype=np.float32))
    for _ in range(int(rng.integers(2, 6))):  # bones / organs
        by, bx = cy + rng.uniform(-0.6, 0.6) * ry, cx + rng.uniform(-0.6, 0.6) * rx
        sy, sx = rng.uniform(0.05, 0.25) * ry, rng.uniform(0.05, 0.25) * rx
        blob = ((yy - by) / sy) ** 2 + ((xx - bx) / sx) ** 2 < 1.0
        img = np.where(blob, rng.uniform(0.7, 0.95) + 0.05 * _smooth_noise(rng, rows, cols, 8), img)
    img = img + rng.normal(0, 0.012, (rows, cols)).astype(np.float32)
    img = np.clip(img, 0, 1)
    padded = np.pad(img, 1, mode="edge")  # a 3x3 box blur: edges as soft as a reconstruction's
    blurred = sum(padded[dy:dy + rows, dx:dx + cols] for dy in range(3) for dx in range(3)) / 9.0
    return blurred.astype(np.float32)


def photograph(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """A photograph-like RGB scene in [0, 1]: sky gradient, textured ground, shapes, leaves."""
    yy = np.linspace(0, 1, rows, dtype=np.float32)[:, None, None]
    sky = np.concatenate([0.5 + 0.3 * (1 - yy), 0.6 + 0.2 * (1 - yy), 0.9 - 0.1 * yy], axis=2) * np.ones(
        (1, cols, 1), np.float32)
    ground = np.stack([_smooth_noise(rng, rows, cols, c) for c in (40, 12, 3)], axis=2)
    ground = 0.2 + 0.5 * ground * np.array([0.6, 0.8, 0.4], np.float32)
    horizon = int(rows * rng.uniform(0.3, 0.6))
    img = sky.copy()
    img[horizon:] = ground[horizon:]
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(pil)
    for _ in range(int(rng.integers(6, 16))):
        x, y = int(rng.integers(0, cols)), int(rng.integers(0, rows))
        w, h = int(rng.integers(cols // 30, cols // 5)), int(rng.integers(rows // 30, rows // 5))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x, y, x + w, y + h], fill=colour)
    for _ in range(int(rng.integers(200, 600))):  # foliage-like high-frequency strokes
        x, y = int(rng.integers(0, cols)), int(rng.integers(horizon, rows))
        dx, dy = int(rng.integers(-12, 12)), int(rng.integers(-20, 0))
        draw.line([x, y, x + dx, y + dy], fill=tuple(int(v) for v in rng.integers(20, 140, 3)), width=2)
    pil = pil.filter(ImageFilter.GaussianBlur(0.8))
    arr = np.asarray(pil, dtype=np.float32) / 255.0
    return np.clip(arr + rng.normal(0, 0.02, arr.shape).astype(np.float32), 0, 1)


# -- drawing ----------------------------------------------------------------------------------

@dataclass
class _Piece:
    text: str
    phi_kind: str | None
    header_matched: bool


def _render_line(pieces: list[_Piece], font: ImageFont.FreeTypeFont) -> tuple[np.ndarray, list[np.ndarray]]:
    """Alpha (0-1) of a whole line and of each piece, left to right with one space between pieces."""
    space = font.getlength(" ")
    widths = [font.getlength(p.text) for p in pieces]
    asc, desc = font.getmetrics()
    width = int(sum(widths) + space * (len(pieces) - 1)) + 4
    height = asc + desc + 4
    layers = []
    x = 2.0
    for p, w in zip(pieces, widths):
        layer = Image.new("L", (width, height), 0)
        ImageDraw.Draw(layer).text((x, 2), p.text, font=font, fill=255)
        layers.append(np.asarray(layer, dtype=np.float32) / 255.0)
        x += w + space
    return np.maximum.reduce(layers), layers


def _ink_box(alpha: np.ndarray, x: int, y: int) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(alpha > 0)
    if not len(ys):
        return None
    return x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1


class Canvas:
    """Free-space bookkeeping and compositing of text alpha onto a float image."""

    def __init__(self, rows: int, cols: int, rng: random.Random) -> None:
        self.rows, self.cols, self.rng = rows, cols, rng
        self.taken: list[tuple[int, int, int, int]] = []

    def spot(self, h: int, w: int, region: tuple[int, int, int, int] | None = None) -> tuple[int, int] | None:
        x0, y0, x1, y1 = region or (4, 4, self.cols - 4, self.rows - 4)
        if w > x1 - x0 or h > y1 - y0:
            return None
        for _ in range(60):
            x, y = self.rng.randrange(x0, x1 - w + 1), self.rng.randrange(y0, y1 - h + 1)
            box = (x - 6, y - 6, x + w + 6, y + h + 6)
            if not any(box[0] < t[2] and t[0] < box[2] and box[1] < t[3] and t[1] < box[3] for t in self.taken):
                self.taken.append(box)
                return x, y
        return None


def _rotate(a: np.ndarray, angle: int) -> np.ndarray:
    return np.rot90(a, k=angle // 90)  # counter-clockwise, as text read bottom-to-top for 90


def place_line(canvas: Canvas, pieces: list[_Piece], font_file: str, size: int, angle: int = 0,
               region: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, int, int, list[Truth]] | None:
    """Render a line, find room for it, return (alpha, x, y, truths) or None when it does not fit."""
    font = _font(font_file, size)
    alpha, layers = _render_line(pieces, font)
    alpha, layers = _rotate(alpha, angle), [_rotate(a, angle) for a in layers]
    spot = canvas.spot(alpha.shape[0], alpha.shape[1], region)
    if spot is None:
        return None
    x, y = spot
    truths = []
    for p, layer in zip(pieces, layers):
        box = _ink_box(layer, x, y)
        if box is not None and p.phi_kind != "prefix":
            truths.append(Truth(p.text, box, p.phi_kind, p.header_matched, size, font_file))
    return alpha, x, y, truths


def composite(img: np.ndarray, alpha: np.ndarray, x: int, y: int, value: float | np.ndarray) -> None:
    """Blend ``value`` into ``img`` (float, [rows, cols] or [rows, cols, 3]) through ``alpha`` in place."""
    h, w = alpha.shape
    region = img[y:y + h, x:x + w]
    a = alpha if img.ndim == 2 else alpha[..., None]
    region[...] = region * (1 - a) + np.asarray(value, np.float32) * a


def _items_to_lines(rng: random.Random, items, non_phi: list[str]) -> list[list[_Piece]]:
    lines = []
    for kind, prefix, value, matched in items:
        pieces = [_Piece(prefix, "prefix", False)] if prefix else []
        pieces.append(_Piece(value, kind, matched))
        lines.append(pieces)
    lines.extend([[_Piece(t, None, False)] for t in non_phi])
    rng.shuffle(lines)
    return lines


# -- cases ------------------------------------------------------------------------------------

MODALITY_SHAPES = {"CT": (512, 512), "MR": (384, 384), "CR": (1024, 832), "DX": (960, 768), "XA": (512, 512),
                   "US": (480, 640), "SC": (600, 800), "XC": (1536, 2048)}


def _to_stored(img: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    dtype = np.uint8 if bits <= 8 else np.uint16
    return np.clip(np.rint(img * top), 0, top).astype(dtype)


def _finish(ds: Dataset, frames: np.ndarray, bits: int, photometric: str) -> Dataset:
    """Native pixel attributes for ``frames`` ((n, rows, cols) or (n, rows, cols, 3))."""
    n, rows, cols = frames.shape[:3]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 3 if frames.ndim == 4 else 1
    if frames.ndim == 4:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 8 if bits <= 8 else 16
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits - 1, 0
    if n > 1:
        ds.NumberOfFrames = n
    ds.PixelData = (frames[0] if n == 1 else frames).tobytes()
    return ds


def _jpeg_round_trip(img8: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    mode = "RGB" if img8.ndim == 3 else "L"
    Image.fromarray(img8, mode).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert(mode))


def make_case(seed: int, style: str) -> Case:
    """One object of ``style`` (a TEXT_STYLES or EMPTY_STYLES name), deterministic in ``seed``."""
    rng = random.Random(seed * 7919 + 17)
    nrng = np.random.default_rng(seed)
    if style in EMPTY_STYLES:
        return _empty_case(seed, style, rng, nrng)
    return _text_case(seed, style, rng, nrng)


def _empty_case(seed: int, style: str, rng: random.Random, nrng: np.random.Generator) -> Case:
    p = _person(rng)
    if style == "empty-photo":
        ds = _header(p, "XC", False, rng)
        rows, cols = MODALITY_SHAPES["XC"] if seed % 2 == 0 else (768, 1024)
        frames = _to_stored(photograph(nrng, rows, cols), 8)[None]
        return Case(f"{style}-{seed}", _finish(ds, frames, 8, "RGB"), style)
    modality = rng.choice(["CT", "MR", "CR", "DX"])
    ds = _header(p, modality, False, rng)
    rows, cols = MODALITY_SHAPES[modality]
    if style == "empty-noise":
        img = np.clip(nrng.normal(0.5, rng.uniform(0.05, 0.25), (rows, cols)), 0, 1).astype(np.float32)
    else:
        img = anatomy(nrng, rows, cols)
    bits = rng.choice([8, 12, 16])
    return Case(f"{style}-{seed}", _finish(ds, _to_stored(img, bits)[None], bits, "MONOCHROME2"), style)


def _text_case(seed: int, style: str, rng: random.Random, nrng: np.random.Generator) -> Case:
    p = _person(rng)
    header_match = rng.random() < 0.5
    modality = {"us-banner": "US", "some-frames": rng.choice(["XA", "US"]),
                "rotated": rng.choice(["CR", "DX", "CT"])}.get(style, rng.choice(["CT", "MR", "CR", "DX", "XA", "SC"]))
    rows, cols = MODALITY_SHAPES[modality]
    ds = _header(p, modality, header_match, rng)
    canvas = Canvas(rows, cols, rng)
    all_items = _phi_items(rng, p, header_match)
    items = rng.sample(all_items, rng.randrange(4, 8))
    non_phi = rng.sample(NON_PHI, rng.randrange(1, 4))
    family = rng.choice(sorted(FONTS))
    font_file = rng.choice(FONTS[family])
    sizes = [s for s in SIZES if s * 14 < cols]  # a line of ~20 chars must fit
    bits, photometric = 8, "MONOCHROME2"
    frames_n = 1
    if style == "us-banner":
        img = _ultrasound(nrng, rows, cols)
        photometric = "RGB"
    elif style == "black-on-white":
        img = anatomy(nrng, rows, cols) * 0.6 if rng.random() < 0.5 else np.full((rows, cols), 0.9, np.float32)
    elif style == "low-contrast":
        bits = rng.choice([12, 16])
        img = anatomy(nrng, rows, cols)
    elif style in ("white-on-black", "rotated", "jpeg-lossy", "some-frames"):
        img = anatomy(nrng, rows, cols)
    else:  # over-anatomy
        img = anatomy(nrng, rows, cols)
    if photometric == "MONOCHROME2" and style == "some-frames":
        frames_n = 3
    truths: list[Truth] = []
    drawings: list[tuple[np.ndarray, int, int, object, int | None]] = []
    lines = _items_to_lines(rng, items, non_phi)
    for i, pieces in enumerate(lines):
        size = rng.choice(sizes)
        angle = 0
        region = None
        if style == "rotated":
            angle = rng.choice([90, 270])
            band = max(60, cols // 8)
            region = (4, 4, band, rows - 4) if angle == 90 else (cols - band, 4, cols - 4, rows - 4)
        elif style == "us-banner":
            banner, side = (4, 4, cols - 4, max(70, rows // 6)), (cols * 3 // 4, rows // 6, cols - 4, rows - 4)
            region = banner if i % 2 == 0 else side
            size = rng.choice([s for s in sizes if s <= 18])
        elif style in ("white-on-black", "black-on-white", "low-contrast", "jpeg-lossy", "some-frames"):
            margin = max(40, cols // 5)  # corners and edges, where overlays live
            region = rng.choice([(4, 4, cols - 4, margin), (4, rows - margin, cols - 4, rows - 4)])
            if style == "black-on-white":
                region = None
        placed = place_line(canvas, pieces, font_file, size, angle, region)
        if placed is None and angle == 0:
            placed = place_line(canvas, pieces, font_file, min(sizes), angle, region)
        if placed is None:
            continue
        alpha, x, y, line_truths = placed
        value = _text_value(style, img, alpha, x, y, bits, rng)
        frame = None
        if frames_n > 1 and rng.random() < 0.5:
            frame = rng.randrange(frames_n)
        drawings.append((alpha, x, y, value, frame))
        truths.extend(Truth(t.text, t.box, t.phi_kind, t.header_matched, t.size, t.font, frame) for t in line_truths)
    if style == "low-contrast":
        # text 10-20 stored levels from its local background, on a flat, quiet patch: flatten under each line
        top = (1 << bits) - 1
        m = 12  # the quiet patch reaches this far around the line (air, a uniform plate)
        for alpha, x, y, _, _ in drawings:
            h, w = alpha.shape
            level = float(np.median(img[y:y + h, x:x + w]))
            img[max(0, y - m):y + h + m, max(0, x - m):x + w + m] = level + nrng.normal(
                0, 1.0 / top, (min(rows, y + h + m) - max(0, y - m), min(cols, x + w + m) - max(0, x - m)))
    stack = []
    for f in range(frames_n):
        frame_img = img.copy() if frames_n == 1 else np.clip(img + nrng.normal(0, 0.01, img.shape), 0, 1)
        for alpha, x, y, value, frame in drawings:
            if frame is None or frame == f:
                composite(frame_img, alpha, x, y, value)
        stack.append(_to_stored(frame_img, bits))
    frames = np.stack(stack)
    if style == "jpeg-lossy":
        q = rng.randrange(35, 75)
        frames = np.stack([_jpeg_round_trip(fr, q) for fr in frames])
    return Case(f"{style}-{seed}", _finish(ds, frames, bits, photometric), style, truths)


def _text_value(style: str, img: np.ndarray, alpha: np.ndarray, x: int, y: int, bits: int,
                rng: random.Random) -> float | np.ndarray:
    h, w = alpha.shape
    under = img[y:y + h, x:x + w]
    if style == "black-on-white":
        under[...] = np.maximum(under, 0.92)  # a light plate under the line
        return rng.uniform(0.0, 0.15)
    if style == "low-contrast":
        top = (1 << bits) - 1
        delta = rng.randrange(10, 21) / top
        level = float(np.median(under))
        return level + delta if rng.random() < 0.5 or level < 0.5 else level - delta
    if style == "us-banner":
        return np.array(rng.choice([(1.0, 1.0, 1.0), (1.0, 0.9, 0.2), (0.6, 0.9, 1.0)]), np.float32)
    if style in ("white-on-black",):
        under[...] = np.minimum(under, 0.04)  # black margin behind the line
        return rng.uniform(0.85, 1.0)
    # drawn over whatever is there, as a scanner's overlay is: light text, or dark where the anatomy under
    # the line is bright (a device picks the colour a reader can see; faint text is the low-contrast style)
    if float(np.median(under)) > 0.55:
        return rng.uniform(0.0, 0.12)
    return rng.uniform(0.85, 1.0)


def _ultrasound(nrng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """An RGB ultrasound screen: black, a speckled sector, a grey banner along the top."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    apex_x, apex_y = cols / 2, rows * 0.12
    ang = np.arctan2(xx - apex_x, yy - apex_y)
    rad = np.hypot(xx - apex_x, yy - apex_y)
    sector = (np.abs(ang) < 0.6) & (rad < rows * 0.8) & (rad > rows * 0.05)
    speckle = nrng.rayleigh(0.18, (rows, cols)).astype(np.float32) * (0.6 + 0.6 * _smooth_noise(nrng, rows, cols, 30))
    grey = np.where(sector, np.clip(speckle, 0, 1), 0.0)
    grey[: max(70, rows // 6)] = 0.12
    return np.repeat(grey[..., None], 3, axis=2)


def make_set(n_per_style: int = 6, seed: int = 5000, empty_per_style: int = 4) -> list[Case]:
    """The benchmark's set: ``n_per_style`` objects of every text style, and text-free images."""
    cases = []
    for k, style in enumerate(TEXT_STYLES):
        cases.extend(make_case(seed + 100 * k + i, style) for i in range(n_per_style))
    for k, style in enumerate(EMPTY_STYLES):
        cases.extend(make_case(seed + 10000 + 100 * k + i, style) for i in range(empty_per_style))
    return cases


# -- scoring ----------------------------------------------------------------------------------

#: a PHI box counts as masked when redactions cover at least this share of it (the text is unreadable)
MASKED_SHARE = 0.8


def _mask(shape: tuple[int, int], boxes) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask[max(0, y0):y1, max(0, x0):x1] = True
    return mask


class Tally:
    """Counts of one redactor on the set, broken down as the issue asks.

    ``groups[group][key]`` = [masked, fully covered, total] PHI boxes; ``labels`` = [kept, total] non-PHI;
    ``outside`` = redacted pixels outside every PHI truth box, of ``pixels`` in all frames.
    """

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0]))
        self.labels = [0, 0]
        self.empty_boxes = 0
        self.empty_images = 0
        self.outside = 0
        self.pixels = 0

    def rate(self, group: str, key: str, column: int = 0) -> float:
        row = self.groups[group][key]
        return row[column] / row[2] if row[2] else 1.0

    def phi(self, keys: dict[str, str], masked: bool, full: bool) -> None:
        for group, key in keys.items():
            row = self.groups[group][key]
            row[0] += masked
            row[1] += full
            row[2] += 1


def score(cases: dict[str, Case], boxes: dict[str, dict[int, list]], blocked: dict[str, str]) -> Tally:
    """Counts over every frame; a blocked object counts as wholly redacted (nothing leaks, nothing is kept)."""
    t = Tally()
    for name, case in cases.items():
        ds = case.dataset
        shape = (int(ds.Rows), int(ds.Columns))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        own = boxes.get(name, {})
        for f in range(frames):
            fb = own.get(f, own.get(0, [])) if name not in blocked else [(0, 0, shape[1], shape[0])]
            mask = _mask(shape, fb)
            if case.text_free:
                t.empty_images += 1
                t.empty_boxes += len(fb)
            phi_mask = np.zeros(shape, dtype=bool)
            for truth in case.truth:
                if truth.frame is not None and truth.frame != f:
                    continue
                x0, y0, x1, y1 = truth.box
                if truth.phi_kind is None:
                    t.labels[0] += not mask[y0:y1, x0:x1].any()
                    t.labels[1] += 1
                    continue
                phi_mask[y0:y1, x0:x1] = True
                share = float(mask[y0:y1, x0:x1].mean())
                t.phi({"overall": "all", "style": case.style, "size": size_bin(truth.size), "kind": truth.phi_kind,
                       "header": "header-matched" if truth.header_matched else "not in header"},
                      share >= MASKED_SHARE, share >= 1.0)
            t.outside += int((mask & ~phi_mask).sum())
            t.pixels += mask.size
    return t
