"""The [logging] section: typed like every other, shown by check-config, settable from the environment."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest

from icapdlp.config import load_settings
from icapdlp.errors import ConfigError
from icapdlp.observability.logs import configure_logging
from icapdlp.observability.options import LoggingOptions


def test_defaults_and_values_from_toml_and_environment(tmp_path):
    assert load_settings(None, environ={}).logging == LoggingOptions(level="info", format="text")
    path = tmp_path / "icapdlp.toml"
    path.write_text('[logging]\nlevel = "debug"\nformat = "json"\n')
    assert load_settings(str(path), environ={}).logging == LoggingOptions("debug", "json")
    env = {"ICAPDLP_LOGGING__LEVEL": "error"}
    assert load_settings(str(path), environ=env).logging == LoggingOptions("error", "json")


@pytest.mark.parametrize("text", ['[logging]\nlevel = "verbose"\n', '[logging]\nformat = "xml"\n',
                                  '[logging]\ncolour = true\n'])
def test_bad_logging_values_are_refused_naming_the_key(tmp_path, text):
    path = tmp_path / "icapdlp.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(str(path), environ={})
    assert "logging." in str(info.value)


def test_check_config_shows_the_logging_section():
    env = {k: v for k, v in os.environ.items() if not k.startswith("ICAPDLP_")}
    env.update({"ICAPDLP_LOGGING__FORMAT": "json", "ICAPDLP_KEY__HEX": "ab" * 32})
    result = subprocess.run([sys.executable, "-m", "icapdlp", "check-config"], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"]["logging"] == {"level": "info", "format": "json"}


def test_json_format_writes_one_object_per_record_with_no_traceback_and_a_reload_replaces_the_handler():
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging(LoggingOptions("info", "text"), stream=io.StringIO())
        configure_logging(LoggingOptions("warning", "json"), stream=stream)  # replaces, never adds
        log = logging.getLogger("icapdlp.test")
        log.info("not at warning level")
        try:
            raise ValueError("DOE^JANE 19700101")
        except ValueError:
            log.exception("failed: %s", "ValueError")
        lines = stream.getvalue().splitlines()
        assert len(lines) == 1
        entry = json.loads(lines[0])
        assert entry["level"] == "ERROR" and entry["message"] == "failed: ValueError"
        assert entry["exception"] == "ValueError" and "DOE" not in lines[0]
    finally:
        root.handlers[:], root.level = saved
