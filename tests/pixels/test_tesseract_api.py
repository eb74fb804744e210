"""The persistent Tesseract engine (ctypes binding to libtesseract): errors, reuse, and the same
words as the one-process-per-frame pytesseract path on generated burned-in frames."""

from __future__ import annotations

import copy
import os
import threading

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from icapdlp.config import Settings
from icapdlp.errors import ConfigError
from icapdlp.pixels import build_cleaner, frames, ocr, regions, tesseract_api
from icapdlp.pixels.options import PixelOptions
from icapdlp.report import ObjectReport
from tests.support.burned_in import make_case

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def planted(words: list[str], size: int = 32) -> np.ndarray:
    """Black words on white, one per line: an image Tesseract reads exactly."""
    image = Image.new("L", (520, 70 * len(words) + 40), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype(FONT, size)
    for i, word in enumerate(words):
        draw.text((30, 30 + 70 * i), word, fill=0, font=font)
    return np.asarray(image)


# -- failures are clear errors, never crashes ------------------------------------------

def test_a_library_that_does_not_load_is_a_clear_error():
    with pytest.raises(tesseract_api.TesseractApiError, match="cannot load 'nope.so'"):
        tesseract_api.TesseractApi("eng", ocr.TESSERACT_CONFIG, library="/nonexistent/nope.so")
    assert tesseract_api.library_loads("/nonexistent/nope.so") is False
    assert tesseract_api.library_loads() is True


def test_a_library_without_the_c_api_is_a_clear_error():
    import ctypes.util

    libc = ctypes.util.find_library("c")
    with pytest.raises(tesseract_api.TesseractApiError, match="has no TessVersion"):
        tesseract_api.TesseractApi("eng", ocr.TESSERACT_CONFIG, library=libc)


def test_a_language_without_traineddata_fails_initialisation():
    with pytest.raises(tesseract_api.TesseractApiError, match="could not initialise language 'zzz'"):
        tesseract_api.TesseractApi("zzz", ocr.TESSERACT_CONFIG)


def test_an_unknown_variable_or_option_is_refused_not_ignored():
    with pytest.raises(tesseract_api.TesseractApiError, match="no variable 'no_such_setting'"):
        tesseract_api.TesseractApi("eng", "--psm 11 -c no_such_setting=1")
    with pytest.raises(ValueError, match="unsupported Tesseract option -l"):
        tesseract_api.parse_config("-l eng")
    with pytest.raises(ValueError, match="without a value"):
        tesseract_api.parse_config("--psm")
    assert tesseract_api.parse_config(ocr.TESSERACT_CONFIG) == (11, 1, {"tessedit_do_invert": "0"})


def test_a_closed_engine_and_a_wrong_image_type_raise():
    api = tesseract_api.TesseractApi("eng", ocr.TESSERACT_CONFIG)
    with pytest.raises(ValueError):
        api.tsv(np.zeros((10, 10), dtype=np.uint16))
    api.close()
    api.close()  # idempotent
    with pytest.raises(tesseract_api.TesseractApiError, match="closed"):
        api.tsv(np.zeros((10, 10), dtype=np.uint8))


def test_the_option_accepts_only_the_two_engines(tmp_path):
    from icapdlp.config import load_settings

    path = tmp_path / "c.toml"
    path.write_text('[pixels]\nocr_engine = "tesseract-cli"\n')
    with pytest.raises(ConfigError, match="ocr_engine"):
        load_settings(str(path))
    path.write_text('[pixels]\nocr_engine = "pytesseract"\ntesseract_library = "/opt/t/libtesseract.so.5"\n')
    loaded = load_settings(str(path)).pixels
    assert (loaded.ocr_engine, loaded.tesseract_library) == ("pytesseract", "/opt/t/libtesseract.so.5")
    assert PixelOptions().ocr_engine == "library"


# -- real reads ------------------------------------------------------------------------

def test_planted_words_are_read_and_one_engine_serves_every_image():
    pool = tesseract_api.EnginePool("eng", ocr.TESSERACT_CONFIG, tesseract_api.DEFAULT_LIBRARY)
    from pytesseract.pytesseract import file_to_dict

    for words in (["Springfield", "Garcia", "19870412"], ["Johnson", "Portland"]):
        with pool.engine() as api:
            data = file_to_dict(api.tsv(planted(words)), "\t", -1)
        assert [w for w in map(str, data["text"]) if w.strip()] == words
        assert data["page_num"][0] == 1 and data["level"][0] == 1  # the page row, as the CLI writes it
    assert pool.created == 1  # initialised once, not per image
    pool.close()


def test_concurrent_callers_get_separate_engines_and_the_same_words():
    """The API object is not thread-safe: threads (the in-process pool) never share one."""
    pool = tesseract_api.EnginePool("eng", ocr.TESSERACT_CONFIG, tesseract_api.DEFAULT_LIBRARY)
    image = planted(["Whitfield", "Carolina"])
    held = threading.Barrier(2)
    results, ids = [], []

    def read():
        with pool.engine() as api:
            ids.append(id(api))
            held.wait(timeout=30)  # both hold an engine at once
            results.append(api.tsv(image))

    threads = [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(ids)) == 2 and pool.created == 2
    assert results[0] == results[1] and "Whitfield" in results[0]
    pool.close()


def test_an_engine_that_failed_mid_image_is_not_reused():
    pool = tesseract_api.EnginePool("eng", ocr.TESSERACT_CONFIG, tesseract_api.DEFAULT_LIBRARY)
    with pytest.raises(ValueError):
        with pool.engine() as api:
            api.tsv(np.zeros((4, 4, 3), dtype=np.uint8))
    with pool.engine() as again:
        assert again is not api
    assert pool.created == 2
    pool.close()


def test_a_forked_child_never_uses_its_parents_engines():
    """A forked worker gets a copy of the parent's memory, engines included; it must build its own."""
    parent = tesseract_api.pool_for("eng", ocr.TESSERACT_CONFIG)
    parent.warm()
    assert tesseract_api.pool_for("eng", ocr.TESSERACT_CONFIG) is parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        mine = tesseract_api.pool_for("eng", ocr.TESSERACT_CONFIG)
        os.write(write, b"own" if mine is not parent and mine.created == 0 else b"shared")
        os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.close(read)
    os.waitpid(pid, 0)
    assert answer == b"own"


# -- the same words as the pytesseract path ---------------------------------------------

#: generated frames of every kind the benchmark uses (sizes, photometrics, plates, font sizes)
EQUALITY_SET = [(60, "MONOCHROME2", 480, 640), (61, "RGB", 600, 800), (62, "MONOCHROME1", 480, 640),
                (63, "MONOCHROME2", 600, 800), (64, "RGB", 480, 640), (65, "MONOCHROME2", 240, 320),
                (66, "YBR_FULL", 480, 640), (67, "MONOCHROME2", 480, 640)]


@pytest.mark.slow
def test_both_engines_give_identical_tesseract_output_and_words_on_generated_frames():
    """Same PSM/OEM/variables and the resolution the CLI reads from pytesseract's BMP: identical TSV
    dictionaries (every row, box and confidence), hence identical words, boxes and redactions."""
    compared = 0
    for seed, photometric, rows, cols in EQUALITY_SET:
        case = make_case(seed, photometric=photometric, rows=rows, cols=cols, font_px=(12, 36))
        decoded = frames.decode(case.dataset, 1 << 30)
        grey = frames.grey8(decoded.frames[0], decoded.photometric, case.dataset)
        p = ocr.polarities(grey)
        composite, _ = regions.compose(p.light, p.dark, p.light_mask, p.dark_mask)
        assert composite is not None
        by_cli = ocr._image_to_data(ocr._ocr_image(composite), "eng")
        by_library = ocr._library_image_to_data(composite, "eng", tesseract_api.DEFAULT_LIBRARY)
        assert by_library == by_cli, f"seed {seed}"
        assert ocr.read_words(grey, engine=ocr.LIBRARY) == ocr.read_words(grey, engine=ocr.PYTESSERACT)
        compared += sum(1 for t in by_cli["text"] if str(t).strip())
    assert compared > 100  # the set really exercises recognition


@pytest.mark.slow
def test_the_default_cleaner_uses_the_library_and_redacts_like_the_pytesseract_cleaner():
    case = make_case(68, font_px=(12, 36))
    results = {}
    for engine in ("library", "pytesseract"):
        cleaner = build_cleaner(Settings(pixels=PixelOptions(ocr_engine=engine)))
        ds = copy.deepcopy(case.dataset)
        cleaner.clean(ds, ObjectReport())
        results[engine] = (cleaner.last_result.redactions, ds.PixelData)
    assert results["library"][0][0], "nothing redacted: the comparison would prove nothing"
    assert results["library"] == results["pytesseract"]
