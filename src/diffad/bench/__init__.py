"""Benchmark harness: detectors x datasets x seeds, honest and paper protocols, resumable."""

from .config import BenchConfig, DetectorSpec, load_config, preset_names
from .report import collect, tables, write_report
from .runner import plan, run_bench, tabular_split

__all__ = [
    "BenchConfig",
    "DetectorSpec",
    "collect",
    "load_config",
    "plan",
    "preset_names",
    "run_bench",
    "tables",
    "tabular_split",
    "write_report",
]
