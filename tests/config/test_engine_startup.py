"""Start-up refuses a configured NER model that is not installed, when a profile cleans pixels.

A typo in ``pixels.ner_model`` would otherwise start a server that blocks
every image with burned-in text; ``serve`` and ``check-config`` say so at once.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from icapdlp.adaptation.engines import needs_pixel_engines, startup_problems
from icapdlp.config import load_settings
from icapdlp.pixels.ner import model_installed
from tests.config.test_settings import run_cli, write

MISSING = 'ner_model = "no_such_ner_model_pkg"\n'
KEY_ENV = {"ICAPDLP_KEY__HEX": "ab" * 32}


def test_installed_model_check_needs_an_importable_pip_package(tmp_path, monkeypatch):
    assert model_installed(load_settings(None).pixels.ner_model)
    assert not model_installed("no_such_ner_model_pkg")
    assert not model_installed("not a module name")
    # importable but not pip-installed (what spacy.load refuses) is not "installed" either
    (tmp_path / "loose_model_module.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert not model_installed("loose_model_module")


@pytest.mark.parametrize("toml, refused", [
    ("[profile]\nclean_pixel_data = true\n[pixels]\n" + MISSING, True),
    ("[profile]\nclean_pixel_data = false\n[pixels]\n" + MISSING, False),
    # one service's own profile turns pixel cleaning on
    ("[profile]\nclean_pixel_data = false\n[pixels]\n" + MISSING
     + '[services.a]\nmethod = "REQMOD"\n[services.b]\nmethod = "RESPMOD"\n'
       "[services.b.profile]\nclean_pixel_data = true\n", True),
    # the global profile is on but no service uses it
    ("[profile]\nclean_pixel_data = true\n[pixels]\n" + MISSING
     + '[services.a]\nmethod = "REQMOD"\n[services.a.profile]\nclean_pixel_data = false\n', False),
])
def test_startup_problems_name_the_key_only_when_pixels_are_cleaned(tmp_path, toml, refused):
    settings = load_settings(write(tmp_path, toml))
    problems = startup_problems(settings)
    assert needs_pixel_engines(settings) is refused
    assert bool(problems) is refused
    assert all(p.startswith("pixels.ner_model: ") and "no_such_ner_model_pkg" in p for p in problems)


def test_check_config_refuses_a_model_that_is_not_installed(tmp_path):
    bad = run_cli("check-config", write(tmp_path, "[profile]\nclean_pixel_data = true\n[pixels]\n" + MISSING))
    assert bad.returncode == 2
    assert "pixels.ner_model" in bad.stderr and "not installed" in bad.stderr
    good = run_cli("check-config", write(tmp_path, "[profile]\nclean_pixel_data = false\n[pixels]\n" + MISSING),
                   env=KEY_ENV)
    assert good.returncode == 0, good.stderr


def test_serve_refuses_to_start_with_a_model_that_is_not_installed(tmp_path):
    path = write(tmp_path, "[server]\nport = 0\n[profile]\nclean_pixel_data = true\n[pixels]\n" + MISSING)
    result = subprocess.run([sys.executable, "-m", "icapdlp", "serve", "--config", path], capture_output=True,
                            text=True, timeout=60, env={"ICAPDLP_KEY__HEX": "ab" * 32, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "pixels.ner_model" in result.stderr and "no_such_ner_model_pkg" in result.stderr
    assert "serving" not in result.stderr


PIXELS_ON = "[server]\nport = 0\n[profile]\nclean_pixel_data = true\n"


def _one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("env, toml, names", [
    ({"ICAPDLP_PIXELS__TESSERACT_LIBRARY": "libnope.so.5"}, "", ("pixels.tesseract_library", "libnope.so.5")),
    ({}, '[pixels]\nocr_language = "zz_nolang"\n', ("pixels.ocr_language", "zz_nolang", "tesseract-ocr-zz_nolang")),
    # the pytesseract engine runs the tesseract program: not on this PATH
    ({"ICAPDLP_PIXELS__OCR_ENGINE": "pytesseract", "PATH": "/nonexistent"}, "",
     ("pixels.ocr_engine", "not on PATH")),
    ({"ICAPDLP_PIXELS__OCR_ENGINE": "pytesseract"}, '[pixels]\nocr_language = "eng+zz_nolang"\n',
     ("pixels.ocr_language", "eng+zz_nolang")),
])
def test_every_engine_setting_that_cannot_work_stops_check_config_and_serve(tmp_path, env, toml, names):
    """A bad Tesseract setting used to pass check-config (exit 0) and start a server blocking every image."""
    path = write(tmp_path, PIXELS_ON + toml)
    env = {**KEY_ENV, "ICAPDLP_CONFIG": path, **env}  # the file as a unit or a manifest names it
    checked = run_cli("check-config", env=env)
    assert checked.returncode == 2, checked.stderr
    line = _one_line_error(checked.stderr)
    assert all(name in line for name in names), line
    assert checked.stdout == ""
    served = run_cli("serve", env=env)
    assert served.returncode == 2
    assert all(name in served.stderr for name in names), served.stderr
    assert "serving" not in served.stderr and "Traceback" not in served.stderr


def test_working_engines_pass_and_an_unused_bad_engine_is_not_checked(tmp_path):
    good = run_cli("check-config", "--config", write(tmp_path, PIXELS_ON), env=KEY_ENV)
    assert good.returncode == 0, good.stderr
    unused = write(tmp_path, "[profile]\nclean_pixel_data = false\n[pixels]\nocr_language = \"zz_nolang\"\n")
    off = run_cli("check-config", "--config", unused, env={**KEY_ENV, "ICAPDLP_PIXELS__TESSERACT_LIBRARY": "x.so"})
    assert off.returncode == 0, off.stderr
