"""`diffad imagegen ...`: few-shot anomaly image generation from the command line.

A model folder (``--model``) holds the fitted stages and ``data.json`` (which image set and size it
was trained on), so later commands need no data options."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..config import parse_assignments
from ..exceptions import DiffadError
from ._common import exit_error, parse_ints, parse_list

imagegen_app = typer.Typer(
    help='Few-shot anomaly image generation (AnomalyDiffusion); needs `pip install "diffad[image]"`.',
    no_args_is_help=True,
)

Model = Annotated[Path, typer.Option(help="Model folder.")]
Sets = Annotated[
    list[str] | None,
    typer.Option("--set", help="Configuration KEY=VALUE (repeatable), e.g. prior_steps=200."),
]
Sampling = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="Sampling setting KEY=VALUE for this run (repeatable): "
        "sample_steps, mask_sample_steps, resample or guidance, e.g. resample=4.",
    ),
]
Device = Annotated[str | None, typer.Option(help="cpu, cuda ... (default: cuda when available).")]
Quiet = Annotated[bool, typer.Option("--quiet", help="No progress bars.")]


def _split(model: Path, data_dir: str | None = None, name: str | None = None):
    """:func:`diffad.imagegen.data.model_split`, imported only when a command runs (keeps `--help` fast)."""
    from ..imagegen.data import model_split

    return model_split(model, data_dir, name)


def _load(model: Path, device: str | None, quiet: bool, sampling: list[str] | None = None):
    """Load a model folder; ``sampling``: ``--set KEY=VALUE`` changes of its sampling settings for this run
    (not saved)."""
    from ..imagegen import AnomalyDiffusion

    if not (model / "data.json").is_file():
        raise DiffadError(
            f"{model}: not a model folder (no data.json); run `diffad imagegen train-prior --model {model}` first"
        )
    changes = parse_assignments(sampling)
    gen = AnomalyDiffusion.load(model, device=device, verbose=not quiet)
    gen.config = gen.config.with_sampling(changes)
    return gen


@imagegen_app.command("train-prior")
def train_prior(
    model: Model = Path("diffad-out/imagegen"),
    data: Annotated[str, typer.Option(help="Image set: SYNTH-IMG/<seed> or MVTec3D/tire.")] = "SYNTH-IMG/0",
    size: Annotated[int, typer.Option(help="Image side in pixels (images are resized to size x size).")] = 32,
    crop: Annotated[
        int | None,
        typer.Option(
            help="Train on square crops of this many pixels (resized to --size) instead of "
            "whole images: for small defects on large images (MVTec3D/tire: 128)."
        ),
    ] = None,
    fraction: Annotated[
        float, typer.Option(help="Share of each defect type's images used to train (the rest is held out).")
    ] = 1 / 3,
    set_: Sets = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    device: Device = None,
    data_dir: Annotated[
        str | None, typer.Option(help="Data folder (default: $DIFFAD_DATA or ../shared/data).")
    ] = None,
    quiet: Quiet = False,
) -> None:
    """Stage 1: train the diffusion prior on the normal images and freeze it."""
    from ..fsio import atomic_write_text
    from ..imagegen import AnomalyDiffusion, ImageGenConfig
    from ..imagegen.generator import check_model_folder

    try:
        cfg = ImageGenConfig.from_dict({"size": size, **parse_assignments(set_)})
        check_model_folder(model, strict=True)  # before anything is written into it
        model.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            model / "data.json",
            json.dumps(
                {"name": data, "size": size, "crop": crop, "fraction": fraction, "data_dir": data_dir}
            ),
        )
        split = _split(model)
        gen = AnomalyDiffusion(cfg, seed=seed, device=device, verbose=not quiet).fit_prior(split.normal)
        gen.save(model)
    except (DiffadError, ValueError) as exc:
        exit_error(exc)
    typer.echo(
        f"prior: {gen.n_parameters['prior']:,} parameters, {len(split.normal)} normal images, "
        f"{cfg.prior_steps} steps in {gen.timings_['prior']:.0f} s, final loss {gen.history_['prior'][-1]:.4f}; saved to {model}"
    )


@imagegen_app.command("train-anomaly")
def train_anomaly(
    model: Model = Path("diffad-out/imagegen"),
    data: Annotated[
        str | None,
        typer.Option(
            help="Learn the defects of this image set instead of the prior's (it must have the "
            "same normal images, e.g. SYNTH-IMG-FAINT/0 on a SYNTH-IMG/0 prior)."
        ),
    ] = None,
    set_: Sets = None,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of these two stages (default: the prior's), to repeat them "
            "on one prior with other random draws."
        ),
    ] = None,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    """Stage 2 and 3: anomaly and spatial embeddings (prior frozen), then the mask model, on the
    few-shot split of the defective images."""
    import dataclasses

    import numpy as np

    try:
        gen = _load(model, device, quiet)
        gen.config = dataclasses.replace(gen.config, **parse_assignments(set_))
        if seed is not None:
            gen.seed = seed
        split = _split(model)
        if data is not None:
            other = _split(model, name=data)
            if other.normal.shape != split.normal.shape or not np.array_equal(other.normal, split.normal):
                raise DiffadError(
                    f"--data {data}: its normal images differ from those the prior was trained on; "
                    "train a prior on it (diffad imagegen train-prior --data ...)."
                )
            spec = json.loads((model / "data.json").read_text())
            (model / "data.json").write_text(json.dumps({**spec, "name": data}))
            split = other
        gen.fit_anomaly(split.train_images, split.train_masks, split.train_kinds)
        gen.fit_masks(split.train_masks, split.train_kinds)
        gen.save(model)
    except (DiffadError, ValueError, TypeError, RuntimeError) as exc:
        exit_error(exc)
    counts = {k: split.train_kinds.count(k) for k in gen.kinds_}
    typer.echo(
        f"anomaly types {counts} (few-shot images per type); embeddings {gen.timings_['anomaly']:.0f} s, "
        f"mask model {gen.timings_['masks']:.0f} s; saved to {model}"
    )


@imagegen_app.command()
def calibrate(
    model: Model = Path("diffad-out/imagegen"),
    n_per_kind: Annotated[int, typer.Option(help="Generated pairs per anomaly type and grid value.")] = 16,
    grid: Annotated[
        str, typer.Option(help="Outside-mask weights to try, comma-separated, each in [0, 1].")
    ] = "0,0.25,0.5,0.75,1",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    """Choose per anomaly type how strongly re-weighting switches the anomaly tokens off outside the
    mask, so that generated defects contrast with their surroundings as much as the few-shot real
    ones (no held-out image is read); saves the choice in the model folder."""
    try:
        values = parse_list(grid, "--grid", float)
        gen = _load(model, device, quiet)
        split = _split(model)
        res = gen.calibrate_reweighting(
            split.normal,
            split.train_images,
            split.train_masks,
            split.train_kinds,
            grid=values,
            n_per_kind=n_per_kind,
            seed=seed,
        )
    except (DiffadError, ValueError, RuntimeError) as exc:
        exit_error(exc)
    gen.save(model)
    typer.echo("median defect contrast (mask against its surroundings, 0..1 scale)")
    typer.echo(f"{'':<16}" + "".join(f"{k:>10}" for k in gen.kinds_))
    typer.echo(f"{'real (few-shot)':<16}" + "".join(f"{res['real'][k]:>10.4f}" for k in gen.kinds_))
    for g, row in res["grid"].items():
        typer.echo(f"{'outside ' + format(g, 'g'):<16}" + "".join(f"{row[k]:>10.4f}" for k in gen.kinds_))
    typer.echo("chosen: " + ", ".join(f"{k} {v:g}" for k, v in res["chosen"].items()) + f"; saved to {model}")


@imagegen_app.command()
def generate(
    model: Model = Path("diffad-out/imagegen"),
    n: Annotated[int, typer.Option("--n", help="Number of (image, mask) pairs.")] = 32,
    kind: Annotated[
        str | None, typer.Option(help="Only this anomaly type (default: all types in turn).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (default: MODEL/generated).")] = None,
    reweight: Annotated[bool, typer.Option(help="Adaptive attention re-weighting.")] = True,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    set_: Sampling = None,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    """Generate pairs: writes pairs.npz (images, masks, kinds) and grid.png."""
    import numpy as np

    from ..imagegen.plots import save_grid

    out = out or model / "generated"
    try:
        gen = _load(model, device, quiet, set_)
        if kind is not None and kind not in gen.kinds_:
            raise DiffadError(f"--kind: expected one of {gen.kinds_}, got {kind!r}")
        split = _split(model)
        res = gen.generate(split.normal, n, kinds=[kind] * n if kind else None, seed=seed, reweight=reweight)
    except (DiffadError, ValueError, RuntimeError) as exc:
        exit_error(exc)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / "pairs.npz", images=res["images"], masks=res["masks"], kinds=np.array(res["kinds"])
    )
    k = min(n, 32)
    grid = save_grid(
        res["images"][:k],
        res["masks"][:k],
        out / "grid.png",
        titles=res["kinds"][:k],
        normal=split.normal[res["normal_index"][:k]],
        columns=4,
    )
    typer.echo(f"{n} pairs -> {out / 'pairs.npz'}; grid {grid}")


@imagegen_app.command()
def evaluate(
    model: Model = Path("diffad-out/imagegen"),
    out: Annotated[Path | None, typer.Option(help="Output folder (default: MODEL/evaluation).")] = None,
    n_per_kind: Annotated[
        int, typer.Option(help="Generated (and crop-and-paste) pairs per anomaly type.")
    ] = 64,
    seeds: Annotated[str, typer.Option(help="Segmenter seeds, comma-separated.")] = "0,1,2",
    seg_steps: Annotated[int, typer.Option(help="Segmenter training steps.")] = 600,
    set_: Sampling = None,
    device: Device = None,
    quiet: Quiet = False,
) -> None:
    """Downstream localisation (segmenter trained on generated vs crop-and-paste vs real-only vs no
    anomalies; pixel AUROC / AP on the held-out real images), nearest-mask IoU, mask fill, diversity
    stand-ins. Writes evaluation.json and grids."""
    import numpy as np

    from ..fsio import atomic_write_text
    from ..imagegen.evaluate import evaluate_generator
    from ..imagegen.plots import save_grid

    out = out or model / "evaluation"
    try:
        gen = _load(model, device, quiet, set_)
        split = _split(model)

        seed_list = parse_ints(seeds, "--seeds")
        res, samples = evaluate_generator(
            gen,
            split,
            n_per_kind=n_per_kind,
            seeds=seed_list,
            seg_steps=seg_steps,
            device=str(gen.device_),
            verbose=not quiet,
        )
    except (DiffadError, ValueError, RuntimeError) as exc:
        exit_error(exc)
    res["model"] = {
        "config": gen.config.to_dict(),
        "kinds": gen.kinds_,
        "timings": gen.timings_,
        "parameters": gen.n_parameters,
        "outside_weights": gen.outside_weights_,
        "data": json.loads((model / "data.json").read_text()),
        "few_shot": {k: split.train_kinds.count(k) for k in gen.kinds_},
        "held_out": {k: split.test_kinds.count(k) for k in sorted(set(split.test_kinds))},
    }
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "evaluation.json", json.dumps(res, indent=2))
    for name, s in samples.items():
        idx = np.concatenate([np.flatnonzero(np.asarray(s["kinds"]) == k)[:8] for k in gen.kinds_])
        save_grid(
            s["images"][idx], s["masks"][idx], out / f"grid_{name}.png", titles=[s["kinds"][i] for i in idx]
        )
    if gen.outside_weights_:
        typer.echo(
            "generated with calibrated outside weights: "
            + ", ".join(f"{k} {v:g}" for k, v in gen.outside_weights_.items())
        )
    types = sorted(
        {
            k.split("/", 1)[1]
            for r in res["downstream"].values()
            for k in r["mean"]
            if k.startswith("pixel_AP/")
        }
    )
    typer.echo(
        f"{'training set of the segmenter':<30} {'pixel AUROC':>16} {'pixel AP':>16}"
        + "".join(f" {'AP ' + t:>16}" for t in types)
    )
    for name, r in res["downstream"].items():
        m, sd = r["mean"], r["std"]
        typer.echo(
            f"{name:<30} {m['pixel_AUROC']:>8.3f} ± {sd['pixel_AUROC']:.3f} {m['pixel_AP']:>8.3f} ± {sd['pixel_AP']:.3f}"
            + "".join(f" {m.get('pixel_AP/' + t, float('nan')):>16.3f}" for t in types)
        )
    iou = res["nearest_mask_iou"]
    typer.echo(
        f"nearest training mask IoU: mean {iou['mean']:.3f}, max {iou['max']:.3f}; mask fill "
        + ", ".join(f"{k} {v:.3f}" for k, v in res["mask_fill"].items())
    )
    typer.echo(
        "signed defect contrast (mask minus its surroundings; real few-shot / generated): "
        + ", ".join(
            f"{k} {v.get('real few-shot', float('nan')):+.3f} / {v['generated']:+.3f}"
            for k, v in res["signed_contrast"].items()
        )
    )
    flipped = [
        k for k, v in res["signed_contrast"].items() if v.get("real few-shot", 0.0) * v["generated"] < 0
    ]
    if flipped:
        typer.echo(
            f"note: generated {', '.join(flipped)} differ in sign from the real ones (darker where they are brighter, "
            "or the reverse); the options that act on this are ImageGenConfig.spatial_embedding and "
            "anomaly_loss (train-anomaly --set spatial_embedding=typed --set anomaly_loss=defect)"
        )
    typer.echo(f"written: {out / 'evaluation.json'}")
