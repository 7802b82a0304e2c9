"""`diffad serve`: live scoring of many series over HTTP (:mod:`diffad.serve`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..exceptions import ConfigError
from ._common import user_errors


@user_errors
def serve(
    models: Annotated[
        Path,
        typer.Option(
            help="Folder of series models: a `diffad fleet fit` or `fleet detect` output (one sub-folder per series)."
        ),
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on; any but loopback needs --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="DIFFAD_TOKEN",
            help="Bearer token clients must send (Authorization: Bearer ...).",
            show_default=False,
        ),
    ] = None,
    state: Annotated[
        Path | None, typer.Option(help="SQLite file of the live state (default: MODELS/serve-state.sqlite).")
    ] = None,
    threshold: Annotated[
        str | None,
        typer.Option(
            help="Decisions: the model's own (default), or spot / dspot online, contamination / pot."
        ),
    ] = None,
    recalibrate_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Re-fit each series' threshold every N final points on its recent scores (off by default).",
        ),
    ] = None,
    retrain_every: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Refit each series' model in the background every N final points on its last 10,000 "
            "unflagged points (off by default; the refitted model lives in memory).",
        ),
    ] = None,
    merge_gap: Annotated[
        int, typer.Option(min=0, help="Events: unflagged points that still join two runs.")
    ] = 0,
    min_duration: Annotated[int, typer.Option(min=1, help="Events: shortest event, in points.")] = 2,
    no_share: Annotated[
        bool,
        typer.Option(
            "--no-share", help="One loaded model per series even where model folders are identical."
        ),
    ] = False,
    compile: Annotated[
        bool,
        typer.Option(
            "--compile",
            help="torch.compile the networks that support it (ImDiffusion) for scoring: about 1.5x "
            "faster scoring on the CPU, after 10-40 s of compiling when the first model is loaded (later "
            "models reuse it).",
        ),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve live anomaly scores and events of the series in MODELS over HTTP (FastAPI + uvicorn):
    POST /v1/series/{id}/points, GET /v1/series/{id}/events, /healthz, /metrics. Needs the serve extra of diffad (FastAPI, uvicorn, prometheus-client)."""
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigError(
            "diffad serve needs FastAPI, uvicorn and prometheus-client: pip install 'diffad[serve]'."
        ) from None
    from ..events import EventRules
    from ..serve import run

    run(
        models,
        host=host,
        port=port,
        token=token,
        log_level=log_level,
        state=state,
        threshold=threshold,
        recalibrate_every=recalibrate_every,
        retrain_every=retrain_every,
        rules=EventRules(merge_gap=merge_gap, min_duration=min_duration),
        share=not no_share,
        compile=compile,
    )
