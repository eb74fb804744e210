"""Remove all text except the allow-list, per service (issue 13): the ultrasound / secondary-capture rule."""

from __future__ import annotations

import copy

from icapdlp.adaptation.worker_tasks import WorkerState
from icapdlp.config import load_settings
from icapdlp.pixels import build_cleaner
from icapdlp.report import ObjectReport
from tests.pixels.conftest import KeywordNer, truth_reader
from tests.support.burned_in import make_case

POLICY = """
[pixels]
ocr_min_confidence = 40.0

[services.deid-req]
method = "REQMOD"

[services.us-sc]
method = "REQMOD"

[services.us-sc.pixels]
all_text = true
"""


def _settings(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return load_settings(str(path), environ={})


def test_service_pixel_table_inherits_the_global_one(tmp_path):
    settings = _settings(tmp_path)
    assert settings.pixels_for("us-sc").all_text and not settings.pixels_for("deid-req").all_text
    assert settings.pixels_for("us-sc").ocr_min_confidence == 40.0  # inherited from [pixels]
    assert settings.pixels_for("us-sc").allow_words == settings.pixels.allow_words


def test_each_service_gets_the_cleaner_of_its_own_pixel_options(tmp_path):
    settings = _settings(tmp_path)
    shared = build_cleaner(settings)
    worker = WorkerState(settings, b"k" * 32, shared, {})
    assert worker.cleaner("deid-req") is shared
    own = worker.cleaner("us-sc")
    assert own is not shared and own.options.all_text and worker.cleaner("us-sc") is own


def test_all_text_removes_every_word_but_the_allow_list(tmp_path):
    """The same words, no PHI recognised: the default keeps them all, all_text removes all but labels."""
    case = make_case(21, rows=160, cols=240, font_px=(10, 16))
    settings = _settings(tmp_path)
    results = {}
    for service in ("deid-req", "us-sc"):
        cleaner = build_cleaner(settings, service=service)
        cleaner.read_words, cleaner.ner = truth_reader(case.truth), KeywordNer({})
        cleaner.clean(copy.deepcopy(case.dataset), ObjectReport())
        results[service] = [r.box for r in cleaner.last_result.redactions[0]]
    labels = [t for t in case.truth if t.kind != "phi"]
    phi = [t for t in case.truth if t.kind == "phi"]
    assert labels and phi

    def covered(t, boxes):
        x0, y0, x1, y1 = t.box
        return any(b.x0 <= x0 and b.y0 <= y0 and b.x1 >= x1 and b.y1 >= y1 for b in boxes)
    assert all(covered(t, results["us-sc"]) for t in phi)
    assert not any(covered(t, results["us-sc"]) for t in labels)  # allow-listed labels stay
    assert len(results["us-sc"]) > len(results["deid-req"])
