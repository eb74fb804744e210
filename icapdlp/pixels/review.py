"""Side-by-side review images for a person to approve pixel cleaning (PS3.15 E.3.1 note).

Review files show the original burned-in text, so they are PHI: the folder
must be as protected as the originals (it is created mode 0700). File names
carry the source file's name when the caller knows it (``anonymize --review``),
so a person finds the image they are judging; otherwise (the server) a digest
of the original SOP Instance UID, never a patient value from the header.

Both panes go through ONE grey window, taken from the original: windowing the
redacted frame on its own (its black boxes move the percentiles) made the
untouched pixels look different, as if more had changed than the boxes.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from icapdlp.pixels.frames import grey8
from icapdlp.pixels.geometry import SOURCE_ALL_TEXT, SOURCE_HEADER, SOURCE_NER

COLOURS = {SOURCE_HEADER: (255, 64, 64), SOURCE_NER: (255, 200, 0), SOURCE_ALL_TEXT: (64, 160, 255)}
GAP_PX = 8
INDEX = "index.html"


#: characters kept from a source file name in a review file name
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _review_name(ds: Dataset, frame: int, source: str | None = None) -> str:
    if source:
        stem = _SAFE_NAME.sub("_", Path(source).name)[:80]
        digest = hashlib.sha256(source.encode()).hexdigest()[:6]  # two inputs of one name stay two files
        return f"{stem}-{digest}-f{frame:04d}.png"
    digest = hashlib.sha256(str(ds.get("SOPInstanceUID", "")).encode()).hexdigest()[:16]
    return f"{digest}-f{frame:04d}.png"


def _same_window(original: np.ndarray, redacted: np.ndarray, photometric: str,
                 ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Both frames through one grey window: rendered side by side as one image, then cut apart."""
    both = grey8(np.concatenate([original, original, redacted], axis=1), photometric, ds)
    cols = original.shape[1]
    return both[:, :cols], both[:, 2 * cols:]  # the original counted twice: its window, not the boxes'


def place_labels(boxes: list[tuple[int, int, int, int]], sizes: list[tuple[int, int]],
                 width: int, height: int) -> list[tuple[int, int]]:
    """Top-left corners for one label per box, no two labels overlapping where it can be helped.

    Each label tries above its box, below it, then inside its top-left corner,
    then steps down in label heights until it is clear of the labels placed so far.
    """
    placed: list[tuple[int, int, int, int]] = []
    out = []
    for (x0, y0, x1, y1), (w, h) in zip(boxes, sizes):
        x = max(0, min(x0, width - w))
        candidates = [y0 - h - 1, y1 + 1, y0 + 1] + [y1 + 1 + k * (h + 1) for k in range(1, 40)]
        chosen = None
        for y in candidates:
            if y < 0 or y + h > height:
                continue
            rect = (x, y, x + w, y + h)
            if not any(rect[0] < p[2] and p[0] < rect[2] and rect[1] < p[3] and p[1] < rect[3] for p in placed):
                chosen = rect
                break
        if chosen is None:
            chosen = (x, max(0, min(y0, height - h)), x + w, max(0, min(y0, height - h)) + h)
        placed.append(chosen)
        out.append((chosen[0], chosen[1]))
    return out


def render_pair(original: np.ndarray, redacted: np.ndarray, photometric: str, ds: Dataset, redactions) -> Image.Image:
    """Original (boxes outlined, labelled by reason) left, redacted frame right, one window for both."""
    left_grey, right_grey = _same_window(original, redacted, photometric, ds)
    left = Image.fromarray(left_grey).convert("RGB")
    right = Image.fromarray(right_grey).convert("RGB")
    canvas = Image.new("RGB", (left.width * 2 + GAP_PX, left.height), (40, 40, 40))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + GAP_PX, 0))
    draw = ImageDraw.Draw(canvas)
    texts = [f"{r.source}:{r.label}" for r in redactions]
    sizes = []
    for text in texts:
        x0, y0, x1, y1 = draw.textbbox((0, 0), text)
        sizes.append((x1 - x0 + 2, y1 - y0 + 2))
    corners = place_labels([(r.box.x0, r.box.y0, r.box.x1, r.box.y1) for r in redactions], sizes,
                           left.width, left.height)
    for r, text, (x, y) in zip(redactions, texts, corners):
        colour = COLOURS.get(r.source, (255, 255, 255))
        b = r.box
        draw.rectangle([b.x0, b.y0, b.x1 - 1, b.y1 - 1], outline=colour, width=2)
        draw.text((x + 1, y), text, fill=colour)
    return canvas


def write_review(review_dir: str, ds: Dataset, result, frames: np.ndarray, source: str | None = None) -> list[Path]:
    """One PNG per distinct redacted frame of this object, and an up-to-date index.html."""
    out = Path(review_dir)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for index, original in sorted(result.originals.items()):
        path = out / _review_name(ds, index, source)
        image = render_pair(original, frames[index], result.photometric, ds, result.redactions[index])
        tmp = path.with_suffix(".tmp")
        image.save(tmp, "PNG")
        os.replace(tmp, path)
        written.append(path)
    _write_index(out)
    return written


def _write_index(out: Path) -> None:
    rows = []
    for png in sorted(out.glob("*.png")):
        name = html.escape(png.name)
        rows.append(f'<li><p>{name}</p><img src="{name}" alt="{name}" style="max-width:100%"></li>')
    legend = " ".join(f'<span style="color:rgb{c}">{html.escape(s)}</span>' for s, c in COLOURS.items())
    page = ("<!doctype html><meta charset=utf-8><title>icapdlp pixel review</title>"
            f"<h1>Burned-in text redactions</h1><p>Left: original, boxes by reason ({legend}). "
            f"Right: as written.</p><ol>{''.join(rows)}</ol>\n")
    tmp = out / (INDEX + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out / INDEX)
