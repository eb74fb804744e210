"""Engine status for /readyz: cheap checks, worker reports, caching, and a warm-up that never crashes."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from icapdlp.adaptation import engines, worker_tasks
from icapdlp.config import load_settings


def settings_with(tmp_path, toml: str):
    path = tmp_path / "c.toml"
    path.write_text(toml)
    return load_settings(str(path))


def test_worker_reports_of_live_pids_only_decide(tmp_path):
    engines.record_worker_status(str(tmp_path), {"tesseract": True, "ner_model": False})
    me = os.getpid()
    assert json.loads((tmp_path / f"{me}.json").read_text()) == {"tesseract": True, "ner_model": False}
    assert engines.worker_status(str(tmp_path), [me]) == {"tesseract": True, "ner_model": False}
    # a pid that is no longer in the pool (its file stays behind) does not count; unreported counts as ok
    assert engines.worker_status(str(tmp_path), [me + 1]) == {"tesseract": True, "ner_model": True}
    assert engines.worker_status(None, [me]) == {"tesseract": True, "ner_model": True}


#: per engine, the [pixels] lines choosing it, and how a test makes it unusable
ENGINE_CASES = {
    "pytesseract": ('ocr_engine = "pytesseract"\n', "hide tesseract from PATH"),
    "library": ('ocr_engine = "library"\n', "point tesseract_library at a missing file"),
}


def break_engine(engine: str, tmp_path, monkeypatch, settings_text: str) -> str:
    """Make ``engine`` unusable; returns the settings text to load after that."""
    if engine == "pytesseract":
        monkeypatch.setenv("PATH", str(tmp_path))  # tesseract is no longer found here
        return settings_text
    return settings_text + f'tesseract_library = "{tmp_path}/libtesseract.so.5"\n'


@pytest.mark.parametrize("engine", sorted(ENGINE_CASES))
def test_readiness_combines_cheap_checks_and_worker_reports_and_caches(tmp_path, monkeypatch, engine):
    text = "[profile]\nclean_pixel_data = true\n[pixels]\n" + ENGINE_CASES[engine][0]
    current = [settings_with(tmp_path, text)]
    now = [100.0]
    reports = tmp_path / "reports"
    reports.mkdir()
    readiness = engines.EngineReadiness(lambda: current[0], lambda: [os.getpid()], str(reports),
                                        clock=lambda: now[0])
    tesseract, ner = readiness.check("tesseract"), readiness.check("ner_model")
    assert asyncio.run(tesseract()) is True and asyncio.run(ner()) is True
    engines.record_worker_status(str(reports), {"tesseract": True, "ner_model": False})
    assert asyncio.run(ner()) is True  # cached for STATUS_CACHE_SECONDS
    now[0] += engines.STATUS_CACHE_SECONDS
    assert asyncio.run(ner()) is False and asyncio.run(tesseract()) is True
    current[0] = settings_with(tmp_path, break_engine(engine, tmp_path, monkeypatch, text))
    now[0] += engines.STATUS_CACHE_SECONDS
    assert asyncio.run(tesseract()) is False


@pytest.mark.parametrize("engine", sorted(ENGINE_CASES))
def test_engines_a_policy_does_not_use_are_ready(tmp_path, monkeypatch, engine):
    pixels = '[pixels]\nner_model = "nope_pkg"\n' + ENGINE_CASES[engine][0]
    unused = break_engine(engine, tmp_path, monkeypatch, "[profile]\nclean_pixel_data = false\n" + pixels)
    ready = {"tesseract": True, "ner_model": True}
    assert engines.main_process_status(settings_with(tmp_path, unused)) == ready
    needed = break_engine(engine, tmp_path, monkeypatch, "[profile]\nclean_pixel_data = true\n" + pixels)
    assert engines.main_process_status(settings_with(tmp_path, needed)) == {"tesseract": False,
                                                                            "ner_model": False}


def test_the_library_engine_ignores_a_tesseract_program_missing_from_path(tmp_path, monkeypatch):
    """No silent switching either way: the library engine is judged by the library alone."""
    monkeypatch.setenv("PATH", str(tmp_path))
    settings = settings_with(tmp_path, "[profile]\nclean_pixel_data = true\n")
    assert engines.main_process_status(settings)["tesseract"] is True


@pytest.mark.slow
def test_worker_warm_up_starts_the_library_engine_once_and_records_its_failure(tmp_path):
    """The real warm-up: the worker's one Tesseract engine is initialised there, not on the first image."""
    from icapdlp.pixels import ocr, tesseract_api

    good = settings_with(tmp_path, "[profile]\nclean_pixel_data = true\n")
    (tmp_path / "good").mkdir()
    worker_tasks.init_worker(worker_tasks.Policy("engines-lib-good", good, b"k" * 32), str(tmp_path / "good"))
    pool = tesseract_api.pool_for("eng", ocr.TESSERACT_CONFIG)
    assert pool.created >= 1 and pool._idle, "warm-up left no initialised engine for the first image"
    assert engines.worker_status(str(tmp_path / "good"), [os.getpid()])["tesseract"] is True
    bad = settings_with(tmp_path, "[profile]\nclean_pixel_data = true\n[pixels]\n"
                                  f'tesseract_library = "{tmp_path}/missing.so"\n')
    (tmp_path / "bad").mkdir()
    worker_tasks.init_worker(worker_tasks.Policy("engines-lib-bad", bad, b"k" * 32), str(tmp_path / "bad"))
    assert engines.worker_status(str(tmp_path / "bad"), [os.getpid()])["tesseract"] is False
    for token in ("engines-lib-good", "engines-lib-bad"):
        worker_tasks._STATES.pop(token, None)


def test_a_failing_warm_up_is_recorded_not_raised(tmp_path, monkeypatch):
    """Raising from the initializer would make the pool restart workers in a loop."""
    settings = settings_with(tmp_path, "[profile]\nclean_pixel_data = true\n")
    import icapdlp.pixels

    def broken(_settings):
        raise RuntimeError("engine exploded")

    monkeypatch.setattr(icapdlp.pixels, "warm_up", broken)
    policy = worker_tasks.Policy("engines-test-token", settings, b"k" * 32)
    worker_tasks.init_worker(policy, str(tmp_path))
    assert engines.worker_status(str(tmp_path), [os.getpid()]) == {"tesseract": False, "ner_model": False}
    worker_tasks._STATES.pop("engines-test-token", None)


@pytest.mark.parametrize("clean", [False, True])
def test_warm_up_runs_only_when_the_policy_cleans_pixels(tmp_path, monkeypatch, clean):
    settings = settings_with(tmp_path, f"[profile]\nclean_pixel_data = {str(clean).lower()}\n")
    import icapdlp.pixels

    calls = []
    monkeypatch.setattr(icapdlp.pixels, "warm_up", lambda s: calls.append(s) or {"tesseract": True,
                                                                                   "ner_model": True})
    token = f"engines-warm-{clean}"
    worker_tasks.init_worker(worker_tasks.Policy(token, settings, b"k" * 32), str(tmp_path))
    worker_tasks._STATES.pop(token, None)
    assert len(calls) == (1 if clean else 0)
    assert (tmp_path / f"{os.getpid()}.json").exists() is clean
