"""The pseudonymisation key: loaded once, checked, never printed.

The key drives every keyed derivation (UIDs, pseudonyms, date offsets, audit
hashes). Anyone holding it can confirm a guessed original UID, so it must be
protected like a password: the file may not be readable by group or others,
and the key itself never reaches a log line, a metric or an exception.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat

from icapdlp.config.schema import KeyOptions
from icapdlp.errors import ConfigError

#: 128 bits is the floor for an HMAC key that resists guessing
MIN_KEY_BYTES = 16
KEY_BYTES = 32


def load_key(options: KeyOptions, *, check_permissions: bool = True) -> bytes:
    """Return the key bytes from ``key.file`` or ``key.hex``; raise ConfigError otherwise."""
    if options.hex is not None:
        return _decode(options.hex.strip(), "key.hex")
    if options.file is None:
        raise ConfigError(
            ["key: no key configured; create one with `icapdlp genkey FILE` and set key.file "
             "(or ICAPDLP_KEY__FILE / ICAPDLP_KEY__HEX)"])
    try:
        info = os.stat(options.file)
    except OSError as exc:
        raise ConfigError([f"key.file: cannot read {options.file} ({exc.strerror}); check the path, or create "
                           "a key with `icapdlp genkey FILE`"]) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError([f"key.file: {options.file} is a folder; give the key file"])
    if check_permissions and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError([f"key.file: {options.file} is readable by group or others; chmod 600 it"])
    try:
        with open(options.file, "rb") as handle:
            raw = handle.read(4096)
    except OSError as exc:
        raise ConfigError([f"key.file: cannot read {options.file} ({exc.strerror}); make it readable by "
                           "the user running icapdlp (mode 0600, owned by that user)"]) from None
    text = raw.strip()
    try:
        return _decode(text.decode("ascii"), "key.file")
    except (UnicodeDecodeError, ConfigError):
        if len(raw) >= MIN_KEY_BYTES:
            return raw  # a raw binary key file
        raise ConfigError([f"key.file: key must be at least {MIN_KEY_BYTES} bytes"]) from None


def _decode(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise ConfigError([f"{where}: not hexadecimal"]) from None
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError([f"{where}: key must be at least {MIN_KEY_BYTES} bytes"])
    return key


def fingerprint(key: bytes) -> str:
    """A short public fingerprint of the key (for ISTag and logs); reveals nothing usable."""
    return hmac.new(key, b"icapdlp key fingerprint v1", hashlib.sha256).hexdigest()[:16]


def generate_key_file(path: str) -> None:
    """Write a new random key (hex) to ``path`` with mode 0600; refuse to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
