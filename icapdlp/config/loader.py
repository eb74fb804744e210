"""Turn TOML text and ``ICAPDLP_*`` environment variables into frozen dataclasses.

The loader is generic: every settings section is a frozen dataclass owned by
the layer that uses it, and this module only walks the type annotations. That
keeps one source of truth per option and means a new option needs no change
here. It collects *every* problem before failing, so an operator fixing a
config file sees the whole list at once, and it never falls back to a default
when a given file is broken.

Supported field types: ``bool``, ``int``, ``float``, ``str``, ``Literal[...]``, string enums,
``Optional[X]``, ``tuple[str, ...]``, ``tuple[int, ...]``, nested frozen
dataclasses and ``dict[str, <dataclass>]``. Field metadata may carry ``min``,
``max`` (numbers), ``secret`` (redacted when printed) and ``doc``.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, get_args, get_origin, get_type_hints

from icapdlp.errors import ConfigError

ENV_PREFIX = "ICAPDLP_"
#: separates section and key in environment names: ICAPDLP_SERVER__PORT=1345
ENV_SEPARATOR = "__"
#: ICAPDLP_* variables that are not settings (the config file path itself)
NON_SETTING_VARIABLES = frozenset({"ICAPDLP_CONFIG"})


def load_toml_file(path: str) -> dict[str, Any]:
    """Read a TOML file; a missing or unreadable file is an error, never an empty config."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found (check the path)"]) from None
    except PermissionError:
        raise ConfigError([f"{path}: permission denied (make it readable by this user)"]) from None
    except IsADirectoryError:
        raise ConfigError([f"{path}: is a folder, not a file (give the TOML configuration file)"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror or type(exc).__name__})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML ({exc})"]) from None


def env_overrides(environ: Mapping[str, str], root_type: type) -> tuple[dict[str, Any], list[str]]:
    """Collect ``ICAPDLP_SECTION__KEY=value`` into a nested mapping of raw strings, and the problems.

    Values stay strings here; :func:`build` converts them with the field's type
    and reports a bad one under the variable's name. A variable naming no
    setting is reported here, by its name and with the nearest valid spelling,
    because the operator has to find it in a unit file or a manifest, not in TOML.
    """
    overrides: dict[str, Any] = {}
    problems: list[str] = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name in NON_SETTING_VARIABLES:
            continue
        path = name[len(ENV_PREFIX):].lower().split(ENV_SEPARATOR)
        problem = _env_path_problem(name, path, root_type)
        if problem:
            problems.append(problem)
            continue
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _EnvString(value, name)
    return overrides, problems


def _env_path_problem(variable: str, path: list[str], root_type: type) -> str | None:
    """Why ``path`` (from ``variable``) names no setting of ``root_type``, or None when it does."""
    if len(path) < 2:
        return (f"{variable}: not a setting; settings are {ENV_PREFIX}SECTION{ENV_SEPARATOR}KEY"
                + _suggest(variable, _env_names(root_type) + sorted(NON_SETTING_VARIABLES), cutoff=0.85))
    tp: Any = root_type
    where = ""
    for depth, part in enumerate(path):
        tp = _unwrap_optional(tp)
        if get_origin(tp) is dict:  # [services.NAME]: any name
            tp, where = get_args(tp)[1], _join(where, part)
            continue
        if not dataclasses.is_dataclass(tp):
            return f"{variable}: {where} is a value, not a section (remove the part after it)"
        fields = {f.name for f in dataclasses.fields(tp) if f.init}
        attr = part.replace("-", "_")
        if attr not in fields:
            kind = f'section "{part}"' if depth == 0 else f'key "{part}" in [{where}]'
            return f"{variable}: unknown {kind}" + _suggest(part, sorted(fields), quote=True)
        tp, where = get_type_hints(tp)[attr], _join(where, part)
    tp = _unwrap_optional(tp)
    if dataclasses.is_dataclass(tp) or get_origin(tp) is dict:
        return f"{variable}: [{where}] is a section; set one of its keys as {variable}{ENV_SEPARATOR}KEY"
    return None


def _env_names(root_type: type) -> list[str]:
    """Every ``ICAPDLP_SECTION__KEY`` of the top two levels (what a typo is compared with)."""
    names = []
    hints = get_type_hints(root_type)
    for section in dataclasses.fields(root_type):
        tp = _unwrap_optional(hints[section.name])
        if dataclasses.is_dataclass(tp):
            names += [f"{ENV_PREFIX}{section.name}{ENV_SEPARATOR}{f.name}".upper() for f in dataclasses.fields(tp)]
    return names


def _unwrap_optional(tp: Any) -> Any:
    if get_origin(tp) in (typing.Union, types.UnionType):
        return next(a for a in get_args(tp) if a is not type(None))
    return tp


def _suggest(word: str, choices: list[str], quote: bool = False, cutoff: float = 0.6) -> str:
    """`` (did you mean "X"?)`` for the closest choice, or nothing when none is close.

    Whole variable names share the long ``ICAPDLP_`` prefix, so they are
    compared with a higher ``cutoff`` than single keys (difflib's default 0.6).
    """
    close = difflib.get_close_matches(word, choices, n=1, cutoff=cutoff)
    if not close:
        return ""
    return f' (did you mean "{close[0]}"?)' if quote else f" (did you mean {close[0]}?)"


class _EnvString(str):
    """A value that came from the environment and still needs type conversion; knows its variable."""

    variable: str

    def __new__(cls, value: str, variable: str) -> "_EnvString":
        self = super().__new__(cls, value)
        self.variable = variable
        return self


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` onto ``base`` (override wins)."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def build(cls: type, data: Mapping[str, Any], where: str = "", problems: list[str] | None = None) -> Any:
    """Build dataclass ``cls`` from ``data`` or raise :class:`ConfigError` listing all problems.

    ``problems`` already found (the environment's) are reported with the rest.
    """
    problems = list(problems or ())
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
            problems.append(f"{_join(where, key)}: unknown key" + _suggest(attr, sorted(fields), quote=True))
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
    if isinstance(raw, _EnvString):
        where = f"{raw.variable} ({where})"  # the operator sets the variable: name it, and the key it sets
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
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if not isinstance(raw, str) or raw not in {member.value for member in tp}:
            choices = ", ".join(repr(member.value) for member in tp)
            problems.append(f"{where}: {_show(raw, meta)} is not one of {choices}")
            return None
        return tp(str(raw))
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
    overrides, env_problems = env_overrides(environ, root_type)
    return build(root_type, merge(data, overrides), problems=env_problems)
