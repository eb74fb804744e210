"""Turn TOML text and ``ICAPDLP_*`` environment variables into frozen dataclasses.

The loader is generic: every settings section is a frozen dataclass owned by
the layer that uses it, and this module only walks the type annotations. That
keeps one source of truth per option and means a new option needs no change
here. It collects *every* problem before failing, so an operator fixing a
config file sees the whole list at once, and it never falls back to a default
when a given file is broken.

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``,
``Optional[X]``, ``tuple[str, ...]``, ``tuple[int, ...]``, nested frozen
dataclasses and ``dict[str, <dataclass>]``. Field metadata may carry ``min``,
``max`` (numbers), ``secret`` (redacted when printed) and ``doc``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin, get_type_hints

ENV_PREFIX = "ICAPDLP_"
#: separates section and key in environment names: ICAPDLP_SERVER__PORT=1345
ENV_SEPARATOR = "__"
#: ICAPDLP_* variables that are not settings (the config file path itself)
NON_SETTING_VARIABLES = frozenset({"ICAPDLP_CONFIG"})


class ConfigError(Exception):
    """Raised with every invalid key and its reason; ``problems`` lists them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def load_toml_file(path: str) -> dict[str, Any]:
    """Read a TOML file; a missing or unreadable file is an error, never an empty config."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None


def env_overrides(environ: Mapping[str, str], root_type: type) -> dict[str, Any]:
    """Collect ``ICAPDLP_SECTION__KEY=value`` into a nested mapping of raw strings.

    Values stay strings here; :func:`build` converts them with the field's type,
    so ``ICAPDLP_SERVER__PORT=abc`` is reported like a bad TOML value.
    Unknown sections or keys are reported by :func:`build` as unknown keys.
    """
    overrides: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or name in NON_SETTING_VARIABLES:
            continue
        if ENV_SEPARATOR not in name:
            overrides.setdefault(name, _EnvString(value))  # reported as an unknown key
            continue
        path = name[len(ENV_PREFIX):].lower().split(ENV_SEPARATOR)
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                break
        else:
            node[path[-1]] = _EnvString(value)
    return overrides


class _EnvString(str):
    """A value that came from the environment and still needs type conversion."""


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` onto ``base`` (override wins)."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def build(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data`` or raise :class:`ConfigError` listing all problems."""
    problems: list[str] = []
    value = _build_dataclass(cls, data, where, problems)
    if problems:
        raise ConfigError(problems)
    return value


def _build_dataclass(cls: type, data: Any, where: str, problems: list[str]) -> Any:
    if not isinstance(data, Mapping):
        problems.append(f"{where or '<root>'}: expected a table, got {_kind(data)}")
        return None
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {}
    before = len(problems)
    for key in data:
        attr = key.replace("-", "_")
        if attr not in fields:
            problems.append(f"{_join(where, key)}: unknown key")
    for name, fld in fields.items():
        key = name if name in data else name.replace("_", "-")
        if key not in data:
            continue
        kwargs[name] = _convert(hints[name], data[key], _join(where, key), problems, fld.metadata)
    if len(problems) > before:
        return None  # cross-field checks only make sense once every field is valid
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        problems.append(f"{where or '<root>'}: {exc}")
        return None


def _convert(tp: Any, raw: Any, where: str, problems: list[str], meta: Mapping) -> Any:
    origin = get_origin(tp)
    args = get_args(tp)
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if raw is None or (isinstance(raw, _EnvString) and raw == ""):
            return None
        return _convert(non_none[0], raw, where, problems, meta)
    if origin is Literal:
        if raw not in args:
            choices = ", ".join(repr(a) for a in args)
            problems.append(f"{where}: {raw!r} is not one of {choices}")
        return str(raw)
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, raw, where, problems)
    if origin is dict:
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: expected a table, got {_kind(raw)}")
            return None
        value_type = args[1]
        return {k: _convert(value_type, v, _join(where, k), problems, meta) for k, v in raw.items()}
    if origin is tuple:
        item_type = args[0]
        if isinstance(raw, _EnvString):
            raw = [part.strip() for part in raw.split(",") if part.strip()]
        if not isinstance(raw, list):
            problems.append(f"{where}: expected a list, got {_kind(raw)}")
            return None
        return tuple(_convert(item_type, item, f"{where}[{i}]", problems, meta) for i, item in enumerate(raw))
    if tp is bool:
        if isinstance(raw, _EnvString):
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
        elif isinstance(raw, bool):
            return raw
        problems.append(f"{where}: expected true or false, got {_show(raw, meta)}")
        return None
    if tp in (int, float):
        value = _number(tp, raw)
        if value is None:
            problems.append(f"{where}: expected {'an integer' if tp is int else 'a number'}, got {_show(raw, meta)}")
            return None
        low, high = meta.get("min"), meta.get("max")
        if low is not None and value < low:
            problems.append(f"{where}: {value} is below the minimum {low}")
        if high is not None and value > high:
            problems.append(f"{where}: {value} is above the maximum {high}")
        return value
    if tp is str:
        if not isinstance(raw, str):
            problems.append(f"{where}: expected a string, got {_kind(raw)}")
            return None
        return str(raw)
    raise TypeError(f"unsupported settings type {tp!r} at {where}")  # programming error


def _number(tp: type, raw: Any) -> int | float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, _EnvString):
        try:
            return tp(raw.strip().replace("_", ""))
        except ValueError:
            return None
    if tp is int and isinstance(raw, int):
        return raw
    if tp is float and isinstance(raw, (int, float)):
        return float(raw)
    return None


def _show(raw: Any, meta: Mapping) -> str:
    return "<redacted>" if meta.get("secret") else repr(str(raw) if isinstance(raw, _EnvString) else raw)


def _kind(raw: Any) -> str:
    return type(raw).__name__ if not isinstance(raw, _EnvString) else "str"


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def as_dict(obj: Any, redact: bool = True) -> Any:
    """Settings as plain data for printing; fields marked ``secret`` are redacted."""
    if dataclasses.is_dataclass(obj):
        out: dict[str, Any] = {}
        for fld in dataclasses.fields(obj):
            value = getattr(obj, fld.name)
            if redact and fld.metadata.get("secret") and value is not None:
                out[fld.name] = "<redacted>"
            else:
                out[fld.name] = as_dict(value, redact)
        return out
    if isinstance(obj, dict):
        return {k: as_dict(v, redact) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return [as_dict(v, redact) for v in obj]
    return obj


def load(root_type: type, path: str | None, environ: Mapping[str, str] | None = None) -> Any:
    """Load ``root_type`` from an optional TOML file plus the environment."""
    data: dict[str, Any] = load_toml_file(path) if path else {}
    environ = os.environ if environ is None else environ
    data = merge(data, env_overrides(environ, root_type))
    return build(root_type, data)
