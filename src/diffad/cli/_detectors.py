"""Building a detector from command-line options (``--detector``, ``--preset``, ``--config``, ``--set``,
``--window``, ``--threshold``, ``--contamination``), shared by ``detect``, ``fit`` and ``fleet``."""

from __future__ import annotations

from typing import Any

from ..exceptions import ConfigError

__all__ = [
    "PRESETS",
    "make_detector",
    "detector_from_options",
    "detector_class",
    "threshold_rule",
    "read_config",
]

PRESETS = ("fast", "paper")


def detector_class(name: str):
    """A registered detector by its class name, case-insensitive, with or without "Detector"."""
    from ..detectors import registry

    known = registry()
    key = name.strip().lower().removesuffix("detector")
    found = {n.lower().removesuffix("detector"): c for n, c in known.items()}.get(key)
    if found is None:
        names = ", ".join(sorted(n.removesuffix("Detector") for n in known))
        raise ConfigError(f"--detector: expected one of {names}, got {name!r}.")
    return found


# the options the command line sets itself, whatever the detector
_OWN = {
    "checkpoint_dir": "the model folder",
    "device": "--device",
    "random_state": "--seed",
    "verbose": "--quiet",
}


def make_detector(
    detector: str,
    preset: str | None,
    overrides: dict,
    device: str | None,
    seed: int,
    verbose: bool,
    rule: dict | None = None,
):
    """The detector (``--detector``, ``--preset`` for ImDiffusion) with ``--set`` overrides and the
    ``--threshold`` / ``--contamination`` options (``rule``), every parameter checked (nothing
    trained yet)."""
    from ..training import resolve_device
    from ..validation import check_option

    cls = detector_class(detector)
    params = set(cls().get_params())
    for key, value in (rule or {}).items():
        if key not in params:
            why = "."
            if key == "window":
                why = " (it scores each point or row on its own)."
            elif "vote_ratio" in params:
                why = " (it decides by its ensemble-step vote; see vote_ratio)."
            raise ConfigError(f"--{key}: {cls.__name__} has no {key} parameter{why} Leave --{key} out.")
        overrides = {**overrides, key: value}
    has_presets = all(callable(getattr(cls, p, None)) for p in PRESETS)
    if preset is not None and not has_presets:
        raise ConfigError(
            f"--preset: {cls.__name__} has no presets (only ImDiffusion has fast and paper). Leave --preset out."
        )
    valid = sorted(params - set(_OWN))
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        taken = [k for k in unknown if k in _OWN]
        hint = "; ".join(f"{k} is set by {_OWN[k]}" for k in taken)
        raise ConfigError(
            f"--set / --config: expected parameters of {cls.__name__}, got unknown {unknown}. Valid: {', '.join(valid)}"
            + (f" ({hint})." if hint else ".")
        )
    own = {"device": device, "random_state": seed, "verbose": verbose}
    kwargs = {**overrides, **{k: v for k, v in own.items() if k in params}}
    if has_presets:
        check_option(preset or "fast", PRESETS, name="--preset")
        det = getattr(cls, preset or "fast")(**kwargs)
    else:
        det = cls(**kwargs)
    det._check_params()
    if "device" in params:
        resolve_device(device)
    return det


def threshold_rule(threshold: str | None, contamination: str | None) -> dict:
    """The ``--threshold`` / ``--contamination`` options as detector parameters (only those given)."""
    rule: dict = {}
    if threshold is not None:
        rule["threshold"] = threshold
    if contamination is not None:
        try:
            rule["contamination"] = float(contamination)
        except ValueError:
            rule["contamination"] = contamination  # "auto", or a bad value the detector's check names
    return rule


# keys of a --config file that are not detector parameters
_CONFIG_KEYS = ("detector", "preset")


def read_config(path) -> dict:
    """A ``--config`` file (TOML or JSON): ``detector`` and ``preset`` as on the command line, every
    other key a detector parameter (``window = 50``, ``threshold = "pot"``). Sub-tables are refused."""
    from ..config import load_file

    cfg = load_file(path)
    tables = sorted(k for k, v in cfg.items() if isinstance(v, dict))
    if tables:
        raise ConfigError(
            f"--config {path}: expected detector parameters as top-level keys (window = 50), got table(s) "
            f"{tables}. Move their keys to the top level."
        )
    for key in _CONFIG_KEYS:
        if key in cfg and not isinstance(cfg[key], str):
            raise ConfigError(f"--config {path}: {key}: expected a name (a string), got {cfg[key]!r}.")
    return cfg


# the options of `detect`, `fit` and `fleet detect | fit` that build the detector (and `set_`, --set)
DETECTOR_OPTIONS = ("detector", "preset", "device", "seed", "threshold", "contamination", "window", "config")


def detector_from_command(options: dict, verbose: bool):
    """:func:`detector_from_options` from a command's option values (its ``locals()``)."""
    chosen: dict[str, Any] = {k: options.get(k) for k in DETECTOR_OPTIONS}
    return detector_from_options(sets=options.get("set_"), verbose=verbose, **chosen)


def detector_from_options(
    *,
    detector: str | None,
    preset: str | None,
    sets: list[str] | None,
    device: str | None,
    seed: int,
    verbose: bool,
    threshold: str | None = None,
    contamination: str | None = None,
    window: int | None = None,
    config=None,
):
    """:func:`make_detector` from the raw option values of ``detect``, ``fit`` and ``fleet``.

    Precedence, lowest first: the detector's defaults (or its ``--preset``), the ``--config`` file,
    ``--set``, then the dedicated options (``--window``, ``--threshold``, ``--contamination``)."""
    from ..config import parse_assignments

    cfg = read_config(config) if config is not None else {}
    name = detector or cfg.get("detector") or "ImDiffusion"
    params = {k: v for k, v in cfg.items() if k not in _CONFIG_KEYS}
    params.update(parse_assignments(sets))
    rule = threshold_rule(threshold, contamination)
    if window is not None:
        rule["window"] = window
    return make_detector(name, preset or cfg.get("preset"), params, device, seed, verbose, rule)
