"""Review images a person can trust (issue 13): one window for both panes, labels apart, named after
the source file, the folder named in the run summary."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from icapdlp.config import Settings
from icapdlp.config.keys import generate_key_file
from icapdlp.pixels import build_cleaner
from icapdlp.pixels.geometry import Box, Redaction
from icapdlp.pixels.review import place_labels, render_pair
from icapdlp.report import ObjectReport
from tests.pixels.conftest import KeywordNer, truth_reader
from tests.support.burned_in import make_case, to_bytes


def test_both_panes_share_one_window():
    """A black box in the redacted frame must not brighten or darken anything else on the right."""
    rng = np.random.default_rng(3)
    original = rng.integers(800, 1200, (60, 80)).astype(np.uint16)
    original[5:15, 5:40] = 4000  # a bright label
    redacted = original.copy()
    redacted[5:15, 5:40] = 0
    from pydicom import Dataset

    ds = Dataset()
    image = np.asarray(render_pair(original, redacted, "MONOCHROME2", ds,
                                   [Redaction(Box(5, 5, 40, 15), "ner", "PERSON")]).convert("L"))
    left, right = image[:, :80], image[:, 80 + 8:]
    outside = np.ones((60, 80), bool)
    outside[0:32, :] = False  # the box, its outline and its label below it
    assert np.array_equal(left[outside], right[outside])


def test_labels_do_not_overlap():
    boxes = [(10, 20, 60, 30), (12, 22, 58, 32), (15, 24, 70, 34), (300, 5, 320, 15)]
    sizes = [(80, 12)] * 4
    corners = place_labels(boxes, sizes, 400, 200)
    rects = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes)]
    for i, a in enumerate(rects):
        assert 0 <= a[0] and a[2] <= 400 and 0 <= a[1] and a[3] <= 200
        for b in rects[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


def test_review_file_is_named_after_its_source(tmp_path):
    case = make_case(21, rows=160, cols=240, font_px=(10, 16))
    cleaner = build_cleaner(Settings(), review_dir=str(tmp_path))
    cleaner.read_words, cleaner.ner = truth_reader(case.truth), KeywordNer({})
    for folder in ("a", "b"):  # one name in two folders: two review files
        cleaner.review_source = f"/data/{folder}/scan 0001.dcm"
        cleaner.clean(copy.deepcopy(case.dataset), ObjectReport())
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(names) == 2 and all(n.startswith("scan_0001.dcm-") and n.endswith("-f0000.png") for n in names)


@pytest.mark.slow
def test_anonymize_review_names_the_folder_in_its_summary(tmp_path, capsys):
    """Real engines: the CLI run writes review images named after the input and prints where they are."""
    from icapdlp.cli.main import main

    src = tmp_path / "in"
    src.mkdir()
    case = make_case(22, rows=240, cols=320, font_px=(18, 24))
    (src / "burned.dcm").write_bytes(to_bytes(case.dataset))
    key = tmp_path / "key"
    generate_key_file(str(key))
    review = tmp_path / "review"
    main(["anonymize", str(src), "-o", str(tmp_path / "out"), "--key-file", str(key), "--review", str(review),
          "--jobs", "1"])
    out = capsys.readouterr().out
    assert f"pixel review images: {review.resolve()}" in out
    pngs = list(Path(review).glob("*.png"))
    assert pngs and all(p.name.startswith("burned.dcm-") for p in pngs)
    assert Image.open(pngs[0]).size[0] > 2 * 320
