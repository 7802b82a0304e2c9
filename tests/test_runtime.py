"""diffad.runtime: the allocator setting the command line applies."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

GLIBC_LINUX = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# Allocate and free a 64 MB torch tensor 20 times and count the page faults that took: with glibc's default
# every allocation is a fresh mmap, faulted in page by page; with the heap kept, only the first is
# (numpy asks for huge pages on large arrays, torch does not).
PROBE = """
import json, resource
import torch
from diffad import runtime
applied = runtime.keep_freed_memory()
torch.ones(16_000_000).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    torch.ones(16_000_000).sum()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "setting": runtime.allocator_setting(), "faults": faults}))
"""


def _probe(malloc: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("DIFFAD_MALLOC", None)
    if malloc is not None:
        env["DIFFAD_MALLOC"] = malloc
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not GLIBC_LINUX, reason="the allocator setting applies to Linux with glibc only")
def test_kept_heap_stops_the_page_faults_of_large_temporaries():
    kept, system = _probe(None), _probe("system")
    assert kept["applied"] is True and kept["setting"] == "heap"
    assert system["applied"] is False and system["setting"] == "system"
    assert system["faults"] > 20 * 10_000  # 64 MB is 15,625 pages of 4 KiB, faulted in again each time
    assert kept["faults"] * 10 < system["faults"]


def test_setting_is_applied_once_and_reported(monkeypatch):
    from diffad import runtime

    monkeypatch.setattr(runtime, "_applied", None)
    monkeypatch.setenv("DIFFAD_MALLOC", "system")
    assert runtime.keep_freed_memory() is False and runtime.allocator_setting() == "system"
    monkeypatch.delenv("DIFFAD_MALLOC")
    assert runtime.keep_freed_memory() is False  # decided once per process: later calls change nothing
