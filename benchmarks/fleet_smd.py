"""The 14 SMD machines as one fleet run (``diffad fleet detect`` on a folder of series).

    python benchmarks/fleet_smd.py --data-dir ../shared/data --work /tmp/smd-fleet --workers 2 \
        --out benchmarks/results/fleet-smd

Writes each machine of ``../shared/data/SMD`` as ``WORK/series/<machine>/train.csv`` and ``test.csv``
(with its label column), the input layout a user gives ``diffad fleet``, then runs
``diffad fleet detect WORK/series --out WORK/fleet`` with ImDiffusion's ``fast`` preset on a local
cluster of ``--workers`` processes (one torch thread each), and copies the fleet's ``summary.csv`` and
``fleet.json`` to ``--out``. Re-running resumes: finished machines are skipped.

``--shared`` runs ``diffad fleet detect --shared`` instead: one model fitted on the 14 training parts put
end to end (all machines have the same 38 channels), every machine scored with it (fleet folder
``WORK/fleet-shared``):

    python benchmarks/fleet_smd.py --data-dir ../shared/data --work /tmp/smd-fleet --workers 2 --shared \
        --out benchmarks/results/fleet-smd-shared
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import pandas as pd

from diffad import ImDiffusionDetector, fleet
from diffad.data import list_entities, load_dataset


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--work", default="/tmp/smd-fleet")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="results/fleet-smd")
    ap.add_argument("--shared", action="store_true", help="one model for all machines")
    args = ap.parse_args()
    series = Path(args.work) / "series"
    for name in list_entities("SMD", args.data_dir):  # "SMD/machine-1-2", ...
        folder = series / name.split("/")[-1]
        if (folder / "test.csv").is_file():
            continue
        ds = load_dataset(name, args.data_dir)
        cols = [f"c{k:02d}" for k in range(ds.train.shape[1])]
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(ds.train, columns=cols).to_csv(folder / "train.csv", index=False)
        pd.DataFrame(ds.test, columns=cols).assign(label=ds.test_labels).to_csv(
            folder / "test.csv", index=False
        )
    folder = Path(args.work) / ("fleet-shared" if args.shared else "fleet")
    t0 = time.perf_counter()
    summary = fleet.run(
        series, folder, detector=ImDiffusionDetector.fast(), workers=args.workers, shared=args.shared
    )
    print(f"wall {time.perf_counter() - t0:.1f} s")
    print(summary.drop(columns=["folder", "error"]).to_string(index=False))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("summary.csv", "fleet.json"):
        shutil.copy(folder / name, out / name)


if __name__ == "__main__":
    main()
