"""Milliseconds per window of one ImTransformer training step (forward, backward, Adam) and of one
forward pass, at the ``fast`` preset's network size on SMD's shape (38 channels, windows of 50).

    python benchmarks/imtransformer_step.py [--threads 2] [--batch 32] [--heads 1 2] [--channels 16]

Run it from two checkouts (``git archive <commit> src | tar -x -C /tmp/old``, then
``PYTHONPATH=/tmp/old/src``) to compare what a change to the network costs; the median of the timed
steps after a warm-up step is printed.
"""

from __future__ import annotations

import argparse
import time

import torch

from diffad.nn.imtransformer import ImTransformer, ImTransformerConfig


def step_ms(K: int, L: int, B: int, heads: int, channels: int, reps: int) -> tuple[float, float]:
    cfg = ImTransformerConfig(
        n_features=K,
        n_blocks=2,
        channels=channels,
        heads=heads,
        ff_dim=2 * channels,
        diffusion_embedding_dim=64,
        time_embedding_dim=32,
        feature_embedding_dim=8,
    )
    gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = ImTransformer(cfg)
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x = torch.randn(B, 2, K, L, generator=gen)
    mask = (torch.rand(B, K, L, generator=gen) > 0.5).float()
    t = torch.randint(0, 50, (B,), generator=gen)
    policy = torch.randint(0, 2, (B,), generator=gen)
    times = []
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        loss = net(x, mask, t, policy).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(3):
            net(x, mask, t, policy)
        forward = (time.perf_counter() - t0) / 3
    train = sorted(times[1:])[reps // 2]
    return 1000 * train / B, 1000 * forward / B


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--heads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    for heads in args.heads:
        train, forward = step_ms(38, 50, args.batch, heads, args.channels, args.reps)
        print(
            f"threads={args.threads} batch={args.batch} heads={heads} channels={args.channels}: "
            f"train {train:.2f} ms/window, forward {forward:.2f} ms/window",
            flush=True,
        )


if __name__ == "__main__":
    main()
