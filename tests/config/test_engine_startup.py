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
    good = run_cli("check-config", write(tmp_path, "[profile]\nclean_pixel_data = false\n[pixels]\n" + MISSING))
    assert good.returncode == 0, good.stderr


def test_serve_refuses_to_start_with_a_model_that_is_not_installed(tmp_path):
    path = write(tmp_path, "[server]\nport = 0\n[profile]\nclean_pixel_data = true\n[pixels]\n" + MISSING)
    result = subprocess.run([sys.executable, "-m", "icapdlp", "serve", "--config", path], capture_output=True,
                            text=True, timeout=60, env={"ICAPDLP_KEY__HEX": "ab" * 32, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 2
    assert "pixels.ner_model" in result.stderr and "no_such_ner_model_pkg" in result.stderr
    assert "serving" not in result.stderr
