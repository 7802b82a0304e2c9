"""Benchmark configuration: strict TOML/JSON into frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from ..config import from_mapping, load_file
from ..detectors import registry
from ..exceptions import ConfigError

__all__ = ["DetectorSpec", "BenchConfig", "load_config", "preset_names", "PROTOCOLS", "TABULAR_PROTOCOLS"]

PROTOCOLS = ("honest", "paper")
TABULAR_PROTOCOLS = ("semi-supervised", "unsupervised")


@dataclass(frozen=True)
class DetectorSpec:
    name: str  # label in result tables and folder names
    detector: str  # registered class name, e.g. "ImDiffusionDetector"
    preset: str | None = None  # optional class-method preset, e.g. "fast"
    params: dict[str, Any] = field(default_factory=dict)  # constructor parameters (override the preset)
    seeds: tuple[int, ...] | None = (
        None  # this detector's seeds (default: the run's), e.g. fewer for a slow one
    )

    def build(self, seed: int):
        cls = registry().get(self.detector)
        if cls is None:
            raise ConfigError(
                f"detector {self.name!r}: unknown class {self.detector!r}; valid: {sorted(registry())}."
            )
        valid = set(cls().get_params())
        unknown = sorted(set(self.params) - valid)
        if unknown:
            raise ConfigError(
                f"detector {self.name!r}: unknown parameter(s) {unknown}; valid: {sorted(valid)}."
            )
        params = dict(self.params)
        if "random_state" in valid:
            params["random_state"] = seed
        if self.preset is None:
            return cls(**params)
        factory = getattr(cls, self.preset, None)
        if not callable(factory):
            raise ConfigError(f"detector {self.name!r}: {self.detector} has no preset {self.preset!r}.")
        return factory(**params)


@dataclass(frozen=True)
class BenchConfig:
    name: str  # run name: results go to <results>/<name>/
    datasets: tuple[str, ...]  # dataset or collection names (collections expand to every entity found)
    detectors: tuple[DetectorSpec, ...]
    seeds: tuple[int, ...] = (0,)
    protocols: tuple[str, ...] = PROTOCOLS
    metric_window: int = 100  # window of VUS and range-AUC
    # ImDiffusion paper protocol: r of the last step on sets without a published rule (SMD and GCP choose
    # r per entity on the test labels; see diffad.protocols.PAPER_IMDIFFUSION_RULES)
    vote_ratio_paper: float = 0.02
    data_dir: str | None = None
    # tabular sets (ADBench): "semi-supervised" = train on a random half of the normal rows, test on the
    # other half plus every anomaly; "unsupervised" = train and test on all rows
    tabular_protocol: str = "semi-supervised"
    max_rows: int | None = 10000  # tabular sets above this size: a stratified random subsample per seed

    def __post_init__(self) -> None:
        if self.tabular_protocol not in TABULAR_PROTOCOLS:
            raise ConfigError(
                f"tabular_protocol: unknown {self.tabular_protocol!r}; valid: {list(TABULAR_PROTOCOLS)}."
            )
        if self.max_rows is not None and self.max_rows < 100:
            raise ConfigError(f"max_rows: expected at least 100 or none, got {self.max_rows}.")
        bad = [p for p in self.protocols if p not in PROTOCOLS]
        if bad:
            raise ConfigError(f"protocols: unknown {bad}; valid: {list(PROTOCOLS)}.")
        names = [d.name for d in self.detectors]
        if len(set(names)) != len(names):
            raise ConfigError(f"detectors: names must be unique, got {names}.")

    def only_seeds(self, seeds: tuple[int, ...]) -> BenchConfig:
        """The same run (same folder, so a later full run resumes it) restricted to these of its seeds,
        e.g. seed 0 of every detector first. A seed no detector runs is an error."""
        known = set(self.seeds).union(*(d.seeds or () for d in self.detectors))
        unknown = sorted(set(seeds) - known)
        if unknown or not seeds:
            raise ConfigError(
                f"seeds: {sorted(seeds)} are not all seeds of run {self.name!r}; its seeds: {sorted(known)}."
            )
        keep = [s for s in self.seeds if s in seeds]
        detectors = tuple(
            replace(d, seeds=tuple(s for s in d.seeds if s in seeds)) if d.seeds is not None else d
            for d in self.detectors
        )
        return replace(self, seeds=tuple(keep), detectors=detectors)

    def only_datasets(self, names: tuple[str, ...]) -> BenchConfig:
        """The same run restricted to these datasets (each one of the run's datasets or an entity of one of
        its collections, e.g. ``SMD/machine-1-2`` of ``SMD``), e.g. one machine at a time."""
        outside = [n for n in names if not any(n == d or n.startswith(d + "/") for d in self.datasets)]
        if outside or not names:
            raise ConfigError(
                f"datasets: {list(outside) or 'none'} not datasets of run {self.name!r}; its datasets: {list(self.datasets)}."
            )
        return replace(self, datasets=tuple(names))


def preset_names() -> list[str]:
    return sorted(
        p.name.removesuffix(".toml")
        for p in resources.files("diffad.bench.presets").iterdir()
        if p.name.endswith(".toml")
    )


def load_config(path: str | Path | None = None, preset: str | None = None) -> BenchConfig:
    """Load a config file or a built-in preset (``diffad/bench/presets/<preset>.toml``)."""
    if (path is None) == (preset is None):
        raise ConfigError(
            "bench: expected a config file or --preset NAME (one of them), got "
            + ("both." if path else "neither.")
        )
    if preset is not None:
        if preset not in preset_names():
            raise ConfigError(f"bench preset: unknown {preset!r}; valid: {preset_names()}.")
        path = Path(str(resources.files("diffad.bench.presets").joinpath(f"{preset}.toml")))
    assert path is not None
    return from_mapping(BenchConfig, load_file(path), where=str(Path(path).name))
