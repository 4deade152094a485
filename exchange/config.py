"""Scenario files: TOML read with tomllib into frozen dataclasses.

Unknown keys are errors that name the key and the file. Precedence: the dataclass defaults, then the
file, then the environment (``GAVEL_<SECTION>_<KEY>``, e.g. ``GAVEL_EXCHANGE_TMAX_MS=80``), then
command-line flags (applied by the caller with :func:`override`).
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A scenario file (or environment variable, or flag) that cannot be used; names where."""


def load_file(cls: type[T], path: str | Path) -> T:
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(cls, data, where=str(path))


def from_dict(cls: type[T], data: Mapping[str, Any], *, where: str, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking every key and type."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: {prefix.rstrip('.') or 'top level'} must be a table")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            raise ConfigError(f"{where}: unknown key {prefix}{key!r}")
        kwargs[key] = _convert(hints[key], value, where, f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except TypeError as exc:
        raise ConfigError(f"{where}: {prefix.rstrip('.') or 'top level'}: {exc}") from None


def _convert(tp: Any, value: Any, where: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return None if value is None else _convert(args[0], value, where, key)
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where=where, prefix=f"{key}.")  # type: ignore[arg-type]
    if origin is tuple:
        item = typing.get_args(tp)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be an array")
        return tuple(_convert(item, v, where, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        vt = typing.get_args(tp)[1]
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: {key} must be a table")
        return {k: _convert(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp in (str, bool) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: {key} must be {getattr(tp, '__name__', tp)}, not {value!r}")


def parse_scalar(tp: Any, text: str, where: str) -> Any:
    """A scalar setting given as text (environment variable or flag)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if text == "" or text.lower() == "none":
            return None
        tp = args[0]
    try:
        if tp is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if tp in (int, float, str):
            return tp(text)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not a valid {tp.__name__}") from None
    raise ConfigError(f"{where}: cannot be set from text")


def override(cfg: T, path: str, value: Any) -> T:
    """A copy of ``cfg`` with the dotted ``path`` (``"exchange.tmax_ms"``) set to ``value``."""
    head, _, rest = path.partition(".")
    if not any(f.name == head for f in dataclasses.fields(cfg)):  # type: ignore[arg-type]
        raise ConfigError(f"unknown setting {path!r}")
    if rest:
        value = override(getattr(cfg, head), rest, value)
    try:
        return dataclasses.replace(cfg, **{head: value})  # type: ignore[type-var]
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def apply_env(cfg: T, environ: Mapping[str, str], *, prefix: str = "GAVEL_") -> T:
    """Apply ``GAVEL_<SECTION>_<KEY>`` variables to the scalar fields of ``cfg``'s sections."""
    for section in dataclasses.fields(cfg):  # type: ignore[arg-type]
        sub = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(sub):
            continue
        hints = typing.get_type_hints(type(sub))
        for f in dataclasses.fields(sub):
            var = f"{prefix}{section.name}_{f.name}".upper()
            if var in environ:
                value = parse_scalar(hints[f.name], environ[var], var)
                cfg = override(cfg, f"{section.name}.{f.name}", value)
    return cfg
