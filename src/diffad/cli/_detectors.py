"""Building a detector from command-line options (``--detector``, ``--preset``, ``--set``,
``--threshold``, ``--contamination``), shared by ``detect``, ``fit`` and ``fleet``."""

from __future__ import annotations

from ..exceptions import ConfigError

__all__ = ["PRESETS", "make_detector", "detector_from_options", "detector_class", "threshold_rule"]

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
            raise ConfigError(
                f"--{key}: {cls.__name__} has no {key} parameter"
                + (
                    " (it decides by its ensemble-step vote; see vote_ratio)."
                    if "vote_ratio" in params
                    else "."
                )
                + f" Leave --{key} out."
            )
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
            f"--set: expected parameters of {cls.__name__}, got unknown {unknown}. Valid: {', '.join(valid)}"
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


def detector_from_options(
    detector: str,
    preset: str | None,
    sets: list[str] | None,
    device: str | None,
    seed: int,
    verbose: bool,
    threshold: str | None,
    contamination: str | None,
):
    """:func:`make_detector` from the raw option values of ``detect``, ``fit`` and ``fleet``."""
    from ..config import parse_assignments

    return make_detector(
        detector,
        preset,
        parse_assignments(sets),
        device,
        seed,
        verbose,
        threshold_rule(threshold, contamination),
    )
