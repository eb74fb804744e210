"""The "config" readiness check: is the policy this process runs still the one its files give?

A running icapdlp holds its settings and key in memory, so nothing breaks at
the moment a file changes: it breaks later, at the next ``SIGHUP`` (the reload
is rejected) or the next restart (the process refuses to start, or starts
with a different key and writes different UIDs and pseudonyms for the same
study than its replicas). The check makes that visible while the process
still serves: it loads the configuration and the key exactly as a reload
would and compares the result with what is running, by the behaviour digest
the ISTag is made from (the key enters as its fingerprint).

It fails, naming the cause by exception type only (``/readyz`` reports the
type, never a message), when:

- :class:`ConfigFileInvalid`: the configuration no longer loads (deleted,
  unreadable, broken TOML, an invalid value);
- :class:`KeyFileUnreadable`: the key no longer loads (deleted, unreadable,
  mode opened to group or others, too short);
- :class:`KeyChanged`: the key on disk is not the running key;
- :class:`ConfigChanged`: the configuration on disk gives another policy
  than the running one (edited without a ``SIGHUP``).

It passes again once the files are put back, or once ``SIGHUP`` makes the
running policy the one on disk. The files are re-read only when one of them
changed (inode, size, mtime or ctime) or the running policy did, so a probe
every second costs two ``stat`` calls.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from icapdlp.config import Settings, load_settings
from icapdlp.config.keys import fingerprint, load_key
from icapdlp.errors import ConfigError

#: the running settings and key (they change on every successful reload)
Running = Callable[[], tuple[Settings, bytes]]


class ConfigDrift(Exception):
    """The running policy is not the one its files give (see the subclasses)."""


class ConfigFileInvalid(ConfigDrift):
    pass


class KeyFileUnreadable(ConfigDrift):
    pass


class KeyChanged(ConfigDrift):
    pass


class ConfigChanged(ConfigDrift):
    pass


class RunningConfigCheck:
    """Callable readiness check: True while the files give the running policy, else raises a ConfigDrift.

    ``config_path`` is the ``--config`` path (``None``: ``ICAPDLP_CONFIG`` or the
    built-in defaults, as :func:`load_settings` decides); ``environ`` is read as
    at start-up (tests pass their own).
    """

    def __init__(self, config_path: str | None, running: Running,
                 environ: dict[str, str] | None = None) -> None:
        self.config_path = config_path
        self.running = running
        self.environ = environ
        self._seen: tuple | None = None
        self._failure: ConfigDrift | None = None
        self._key_file: str | None = None

    def __call__(self) -> bool:
        settings, key = self.running()
        environ = os.environ if self.environ is None else self.environ
        path = self.config_path or environ.get("ICAPDLP_CONFIG") or None
        key_file = self._key_file or settings.key.file
        seen = (id(settings), fingerprint(key), _stat(path), key_file, _stat(key_file))
        if seen != self._seen:
            self._failure = self._compare(path, settings, key, environ)
            self._seen = seen
        if self._failure is not None:
            raise type(self._failure)()
        return True

    def _compare(self, path: str | None, settings: Settings, key: bytes, environ) -> ConfigDrift | None:
        try:
            on_disk = load_settings(path, environ)
        except ConfigError:
            return ConfigFileInvalid()
        self._key_file = on_disk.key.file
        try:
            disk_key = load_key(on_disk.key)
        except ConfigError:
            return KeyFileUnreadable()
        running_fp, disk_fp = fingerprint(key), fingerprint(disk_key)
        if disk_fp != running_fp:
            return KeyChanged()
        if on_disk.behaviour_digest(disk_fp) != settings.behaviour_digest(running_fp):
            return ConfigChanged()
        return None


def _stat(path: str | None) -> tuple | None:
    """What tells a changed file from the same one; None when there is no file (or it is gone)."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError as exc:
        return ("missing", exc.errno)
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_mode)
