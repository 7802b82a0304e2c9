from dataclasses import dataclass
from typing import Literal

import pytest

from diffad import ConfigError
from diffad.config import from_mapping, load_file, parse_assignments, to_mapping


@dataclass(frozen=True)
class Inner:
    window: int = 100
    rule: Literal["mean", "central"] = "central"


@dataclass(frozen=True)
class Outer:
    name: str
    seeds: tuple[int, ...] = (0,)
    lr: float = 1e-3
    inner: Inner = Inner()


def test_roundtrip_and_types():
    cfg = from_mapping(Outer, {"name": "x", "seeds": [1, 2], "lr": 1, "inner": {"window": 50}})
    assert cfg.seeds == (1, 2) and cfg.lr == 1.0 and cfg.inner.window == 50
    assert from_mapping(Outer, to_mapping(cfg)) == cfg


def test_unknown_keys_list_valid_ones():
    with pytest.raises(
        ConfigError, match=r"unknown key\(s\) \['widnow'\]; valid keys are \['rule', 'window'\]"
    ):
        from_mapping(Outer, {"name": "x", "inner": {"widnow": 5}})


def test_wrong_types_and_missing():
    with pytest.raises(ConfigError, match="expected int"):
        from_mapping(Outer, {"name": "x", "inner": {"window": "big"}})
    with pytest.raises(ConfigError, match=r"expected one of \['mean', 'central'\]"):
        from_mapping(Outer, {"name": "x", "inner": {"rule": "median"}})
    with pytest.raises(ConfigError, match="missing required"):
        from_mapping(Outer, {})


def test_load_file(tmp_path):
    (tmp_path / "c.toml").write_text('name = "a"\nseeds = [0, 1]\n')
    assert from_mapping(Outer, load_file(tmp_path / "c.toml")).seeds == (0, 1)
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(ConfigError, match="parse error"):
        load_file(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="existing file"):
        load_file(tmp_path / "none.toml")


def test_parse_assignments():
    got = parse_assignments(["steps=200", "lr=1e-3", "on=true", "sizes=[16, 32]", "name=fast", "path=a=b"])
    assert got == {"steps": 200, "lr": 1e-3, "on": True, "sizes": [16, 32], "name": "fast", "path": "a=b"}
    assert parse_assignments(None) == {}
    with pytest.raises(ConfigError, match="--retrain: expected KEY=VALUE, got 'steps'"):
        parse_assignments(["steps"], "--retrain")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_assignments(["=3"])
