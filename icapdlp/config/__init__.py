"""Configuration: one typed, frozen :class:`Settings` object, read once and passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping

from icapdlp.config import loader
from icapdlp.config.schema import KeyOptions, ServiceOptions, Settings, inherit_service_profiles

__all__ = ["KeyOptions", "ServiceOptions", "Settings", "load_settings"]


def load_settings(path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from an optional TOML file (or ``ICAPDLP_CONFIG``) plus ``ICAPDLP_*`` overrides.

    With neither a file nor variables this is the built-in default policy.
    Raises :class:`icapdlp.errors.ConfigError` naming every invalid key.
    """
    environ = os.environ if environ is None else environ
    path = path or environ.get("ICAPDLP_CONFIG") or None
    data = loader.load_toml_file(path) if path else {}
    overrides, env_problems = loader.env_overrides(environ, Settings)
    data = loader.merge(data, overrides)
    return loader.build(Settings, inherit_service_profiles(data), problems=env_problems)
