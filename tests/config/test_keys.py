"""The pseudonymisation key: sources, permission checks, generation, no leaks."""

from __future__ import annotations

import os

import pytest

from icapdlp.config.keys import MIN_KEY_BYTES, fingerprint, generate_key_file, load_key
from icapdlp.config.schema import KeyOptions
from icapdlp.errors import ConfigError


def test_generated_key_file_is_private_and_loads(tmp_path):
    path = tmp_path / "key"
    generate_key_file(str(path))
    assert os.stat(path).st_mode & 0o777 == 0o600
    key = load_key(KeyOptions(file=str(path)))
    assert len(key) == 32


def test_generate_refuses_to_overwrite(tmp_path):
    path = tmp_path / "key"
    generate_key_file(str(path))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        generate_key_file(str(path))
    assert path.read_bytes() == before


def test_group_readable_key_file_is_refused(tmp_path):
    path = tmp_path / "key"
    path.write_text("ab" * 32)
    os.chmod(path, 0o640)
    with pytest.raises(ConfigError, match="readable by group or others"):
        load_key(KeyOptions(file=str(path)))


def test_short_keys_are_refused_at_the_limit_and_accepted_at_it(tmp_path):
    with pytest.raises(ConfigError, match="at least"):
        load_key(KeyOptions(hex="00" * (MIN_KEY_BYTES - 1)))
    assert load_key(KeyOptions(hex="00" * MIN_KEY_BYTES)) == bytes(MIN_KEY_BYTES)


def test_missing_key_names_the_fix():
    with pytest.raises(ConfigError, match="icapdlp genkey"):
        load_key(KeyOptions())


def test_key_errors_never_echo_the_key():
    secret = "zz" + "ab" * 20
    with pytest.raises(ConfigError) as caught:
        load_key(KeyOptions(hex=secret))
    assert secret not in str(caught.value)


def test_fingerprint_is_stable_and_key_dependent():
    assert fingerprint(b"a" * 32) == fingerprint(b"a" * 32)
    assert fingerprint(b"a" * 32) != fingerprint(b"b" * 32)
    assert (b"a" * 32).hex() not in fingerprint(b"a" * 32)
