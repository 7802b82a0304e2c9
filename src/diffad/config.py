"""Strict configuration loading into frozen dataclasses.

``from_mapping(MyConfig, {...})`` builds a frozen dataclass and rejects unknown keys (listing the valid
ones) and values of the wrong type. ``load_file(path)`` reads TOML (``tomllib``) or JSON.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from .exceptions import ConfigError

__all__ = ["from_mapping", "load_file", "parse_assignments", "to_mapping"]

T = TypeVar("T")


def parse_assignments(items: list[str] | None, option: str = "--set") -> dict[str, Any]:
    """``["KEY=VALUE", ...]`` (command-line overrides) into a dict; a value is read as JSON where it
    parses (numbers, booleans, lists), else kept as the string."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option}: expected KEY=VALUE, got {item!r}.")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def load_file(path: str | Path) -> dict[str, Any]:
    """Read a ``.toml`` or ``.json`` file into a dict, with a clear error if it cannot be parsed."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file: expected an existing file, got {str(path)!r}. Check the path.")
    try:
        if path.suffix == ".toml":
            return tomllib.loads(path.read_text())
        if path.suffix == ".json":
            return json.loads(path.read_text())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"config file {path}: expected valid {path.suffix[1:].upper()}, got a parse error: {exc}"
        ) from None
    raise ConfigError(
        f"config file: expected a .toml or .json file, got {path.name!r}. Rename or convert it."
    )


def _check_type(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(tp):
            try:
                return _check_type(value, arm, where)
            except ConfigError:
                continue
        raise ConfigError(f"{where}: expected {tp}, got {value!r} ({type(value).__name__}).")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected None, got {value!r}.")
    if origin is typing.Literal:
        if value in typing.get_args(tp):
            return value
        raise ConfigError(f"{where}: expected one of {list(typing.get_args(tp))}, got {value!r}.")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table/mapping, got {value!r}.")
        return dict(value)
    if origin in (tuple, list):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}.")
        args = typing.get_args(tp)
        item = args[0] if args else Any
        return tuple(_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, where=where)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(tp, type):
        if isinstance(value, bool) and tp is not bool:
            raise ConfigError(f"{where}: expected {tp.__name__}, got a bool {value!r}.")
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{where}: expected {tp.__name__}, got {value!r} ({type(value).__name__}).")
    return value


def from_mapping(cls: type[T], mapping: Any, *, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``mapping``; unknown keys and wrong types are errors."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a table/mapping, got {type(mapping).__name__}.")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]  # cls is a dataclass
    unknown = sorted(set(mapping) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(fields)}.")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _check_type(v, hints[k], f"{where}.{k}") for k, v in mapping.items()}
    missing = [
        n
        for n, f in fields.items()
        if n not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    if missing:
        raise ConfigError(f"{where}: missing required key(s) {missing}.")
    return cls(**kwargs)


def to_mapping(obj: Any) -> dict[str, Any]:
    """The inverse of :func:`from_mapping` (tuples become lists, so the result is JSON/TOML-ready)."""

    def conv(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [conv(x) for x in v]
        if dataclasses.is_dataclass(v):
            return to_mapping(v)
        return v

    return {f.name: conv(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
