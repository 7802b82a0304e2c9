"""ImDiffusion on the CPU with glibc's default allocator and with ``diffad.runtime.keep_freed_memory``.

    python benchmarks/malloc_ab.py --data-dir ../shared/data --dataset MSL --epochs 1 --test-points 10000

Runs the same fit and scoring twice, each in a fresh process: once with ``DIFFAD_MALLOC=system``
(glibc's default) and once with the setting the command line applies. Prints wall time, CPU time in
user and kernel mode, minor page faults and peak memory of each phase, and checks that both runs
computed the same scores to the last bit. The order alternates with ``--repeats``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time


def child(args: argparse.Namespace) -> None:
    import hashlib
    import resource

    import numpy as np
    import torch

    from diffad import ImDiffusionDetector, runtime
    from diffad.data import load_dataset

    applied = runtime.keep_freed_memory()
    torch.set_num_threads(args.threads)
    ds = load_dataset(args.dataset, args.data_dir)
    train = ds.train[: args.train_points] if args.train_points else ds.train
    test = ds.test[: args.test_points] if args.test_points else ds.test
    det = ImDiffusionDetector.fast(
        max_epochs=args.epochs, patience=args.epochs, random_state=0, verbose=False
    )

    def phase(fn):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        out = fn()
        r1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
        return out, {
            "wall_s": wall,
            "user_s": r1.ru_utime - r0.ru_utime,
            "sys_s": r1.ru_stime - r0.ru_stime,
            "minor_faults": r1.ru_minflt - r0.ru_minflt,
        }

    _, fit = phase(lambda: det.fit(train))
    scores, score = phase(lambda: np.asarray(det.decision_function(test), dtype=np.float64))
    print(
        json.dumps(
            {
                "malloc": runtime.allocator_setting(),
                "applied": applied,
                "fit": fit,
                "score": score,
                "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "scores_sha1": hashlib.sha1(scores.tobytes()).hexdigest(),
                "n_train": len(train),
                "n_test": len(test),
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("DIFFAD_DATA"))
    ap.add_argument("--dataset", default="MSL")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--train-points", type=int, default=0, help="first N training points (0: all)")
    ap.add_argument("--test-points", type=int, default=10000, help="first N test points (0: all)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeats", type=int, default=1, help="pairs of runs, the order alternating")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for rep in range(args.repeats):
        for setting in ("system", "heap") if rep % 2 == 0 else ("heap", "system"):
            env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
            env["DIFFAD_MALLOC"] = setting  # anything but "system" applies the setting
            out = subprocess.run(
                [sys.executable, __file__, "--child", *sys.argv[1:]],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  done: {rows[-1]['malloc']} (run {rep + 1})", file=sys.stderr)
    if len({r["scores_sha1"] for r in rows}) != 1:
        sys.exit("the two settings computed different scores")
    r = rows[0]
    print(
        f"{args.dataset}: {r['n_train']} training points, {args.epochs} epoch(s); {r['n_test']} test points scored; "
        f"{args.threads} torch thread(s); {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        "scores identical in every run\n"
    )
    print("| malloc | phase | wall s | user s | sys s | minor faults | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        for name in ("fit", "score"):
            p = r[name]
            print(
                f"| {r['malloc']} | {name} | {p['wall_s']:.1f} | {p['user_s']:.1f} | {p['sys_s']:.1f} | "
                f"{p['minor_faults']:,} | {r['max_rss_mb']:.0f} |"
            )


if __name__ == "__main__":
    main()
