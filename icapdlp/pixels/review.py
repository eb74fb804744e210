"""Side-by-side review images for a person to approve pixel cleaning (PS3.15 E.3.1 note).

Review files show the original burned-in text, so they are PHI: the folder
must be as protected as the originals (it is created mode 0700). File names
are a digest of the original SOP Instance UID, never a patient value.
"""

from __future__ import annotations

import hashlib
import html
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from icapdlp.pixels.frames import grey8
from icapdlp.pixels.geometry import SOURCE_ALL_TEXT, SOURCE_HEADER, SOURCE_NER

COLOURS = {SOURCE_HEADER: (255, 64, 64), SOURCE_NER: (255, 200, 0), SOURCE_ALL_TEXT: (64, 160, 255)}
GAP_PX = 8
INDEX = "index.html"


def _review_name(ds: Dataset, frame: int) -> str:
    digest = hashlib.sha256(str(ds.get("SOPInstanceUID", "")).encode()).hexdigest()[:16]
    return f"{digest}-f{frame:04d}.png"


def render_pair(original: np.ndarray, redacted: np.ndarray, photometric: str, ds: Dataset, redactions) -> Image.Image:
    """Original (boxes outlined, labelled by reason) left, redacted frame right."""
    left = Image.fromarray(grey8(original, photometric, ds)).convert("RGB")
    right = Image.fromarray(grey8(redacted, photometric, ds)).convert("RGB")
    canvas = Image.new("RGB", (left.width * 2 + GAP_PX, left.height), (40, 40, 40))
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + GAP_PX, 0))
    draw = ImageDraw.Draw(canvas)
    for r in redactions:
        colour = COLOURS.get(r.source, (255, 255, 255))
        b = r.box
        draw.rectangle([b.x0, b.y0, b.x1 - 1, b.y1 - 1], outline=colour, width=2)
        draw.text((b.x0, max(0, b.y0 - 11)), f"{r.source}:{r.label}", fill=colour)
    return canvas


def write_review(review_dir: str, ds: Dataset, result, frames: np.ndarray) -> list[Path]:
    """One PNG per distinct redacted frame of this object, and an up-to-date index.html."""
    out = Path(review_dir)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    written = []
    for index, original in sorted(result.originals.items()):
        path = out / _review_name(ds, index)
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
