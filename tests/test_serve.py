"""diffad serve: a real uvicorn server on 127.0.0.1 (random port), talked to over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the serve extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed")
pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("prometheus_client", reason="the serve extra is not installed")

from diffad.data.synthetic import make_series  # noqa: E402
from diffad.detectors import ImDiffusionDetector, PCADetector  # noqa: E402
from diffad.events import EventRules  # noqa: E402
from diffad.serve import create_app  # noqa: E402
from diffad.stream import StreamScorer  # noqa: E402

K = 4


@pytest.fixture(scope="module")
def data():
    return make_series(n_train=400, n_test=300, n_channels=K, n_anomalies=3, seed=1)


@pytest.fixture(scope="module")
def models(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("models")
    imd = ImDiffusionDetector(**ImDiffusionDetector._test_params()).fit(data.train)
    pca = PCADetector(contamination=0.02).fit(data.train)
    imd.save(root / "host-a")  # a `fleet fit` layout
    (root / "host-b").mkdir()
    pca.save(root / "host-b" / "model")  # a `fleet detect` layout
    imd.save(root / "host-c")  # the same files as host-a: one loaded model, batched together
    return root, {"host-a": imd, "host-b": pca, "host-c": imd}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """uvicorn in a thread, on 127.0.0.1 and a free port."""

    def __init__(self, app, host="127.0.0.1"):
        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        for _ in range(200):
            if self.server.started:
                return self
            time.sleep(0.05)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


def _points(X, t0=0):
    return {
        "points": [
            {"timestamp": 1_700_000_000 + 60 * (t0 + i), "values": row.tolist()} for i, row in enumerate(X)
        ]
    }


def _raw(client, body: bytes, content_type="application/json"):
    return client.post("/v1/series/host-b/points", content=body, headers={"content-type": content_type})


def _post(client, series, X, t0=0, **kw):
    return client.post(f"/v1/series/{series}/points", json=_points(X, t0), **kw)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_streamed_scores_over_http_equal_the_library_stream(models, data, tmp_path, compile):
    """Also with ``compile=True`` (``serve --compile``): ImDiffusion scores through torch.compile."""
    root, dets = models
    app = create_app(root, state=tmp_path / "state.sqlite", compile=compile)
    X = data.test
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        got = {s: [] for s in dets}
        for a in range(0, 300, 37):
            for s in dets:
                r = _post(c, s, X[a : a + 37], a)
                assert r.status_code == 200, r.text
                got[s] += [p["score"] for p in r.json()["final"]]
        health = c.get("/healthz").json()
        assert health == {"status": "ok", "series": 3, "loaded": 3, "models": 2}
    for s, det in dets.items():
        ref = StreamScorer(det).update(X).scores
        np.testing.assert_allclose(got[s], ref[: len(got[s])], rtol=1e-5, atol=1e-7)
        assert len(got[s]) >= 300 - det._stream_grid()[0] if det._stream == "window" else len(got[s]) == 300
    # the batch scores, too, away from the end the batch call pads
    np.testing.assert_allclose(
        got["host-a"][:250], dets["host-a"].decision_function(X)[:250], rtol=1e-5, atol=1e-7
    )


def test_bad_requests_get_4xx_with_a_message(models, data, tmp_path):
    root, _ = models
    app = create_app(root, state=tmp_path / "state.sqlite")
    X = data.test
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert _post(c, "host-b", X[:5]).status_code == 200
        cases = {
            "malformed JSON": (
                _raw(c, b"{not json"),
                400,
            ),
            "unknown series": (_post(c, "nope", X[:3]), 404),
            "wrong channel count": (
                c.post("/v1/series/host-b/points", json={"points": [{"values": [1.0, 2.0]}]}),
                422,
            ),
            "NaN": (
                _raw(c, b'{"points": [{"timestamp": 1800000000, "values": [1, NaN, 2, 3]}]}'),
                422,
            ),
            "null": (
                c.post(
                    "/v1/series/host-b/points",
                    json={"points": [{"timestamp": 1800000000, "values": [1, None, 2, 3]}]},
                ),
                422,
            ),
            "duplicate timestamp": (_post(c, "host-b", X[:2], 4), 409),
            "out of order in a request": (
                c.post(
                    "/v1/series/host-b/points",
                    json={
                        "points": [
                            {"timestamp": 1900000002, "values": [0, 0, 0, 0]},
                            {"timestamp": 1900000001, "values": [0, 0, 0, 0]},
                        ]
                    },
                ),
                422,
            ),
            "no points": (c.post("/v1/series/host-b/points", json={"points": []}), 422),
            "bad CSV": (
                _raw(c, b"1,2\n", "text/csv"),
                422,
            ),
            "text values": (
                c.post("/v1/series/host-b/points", json={"points": [{"values": ["a", 1, 2, 3]}]}),
                422,
            ),
            "bad status": (c.get("/v1/series/host-b/events", params={"status": "maybe"}), 422),
        }
        for name, (resp, status) in cases.items():
            assert resp.status_code == status, (name, resp.text)
            assert "error" in resp.json() and len(resp.json()["error"]) > 20, name
        assert "last point" in cases["duplicate timestamp"][0].json()["error"]
        # the series goes on after every refusal
        r = _post(c, "host-b", X[5:8], 5)
        assert r.status_code == 200 and [p["position"] for p in r.json()["final"]] == [5, 6, 7]


def test_csv_lines_and_named_channels_are_accepted(models, data, tmp_path):
    root, dets = models
    app = create_app(root, state=tmp_path / "state.sqlite")
    X = data.test
    names = [f"ch{k}" for k in range(K)]
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        lines = (
            "timestamp,"
            + ",".join(reversed(names))
            + "\n"
            + "".join(
                f"2026-01-01T00:{i:02d}:00," + ",".join(str(v) for v in X[i][::-1]) + "\n" for i in range(10)
            )
        )
        r = c.post("/v1/series/host-b/points", content=lines.encode(), headers={"content-type": "text/csv"})
        assert r.status_code == 200, r.text
        named = {
            "points": [
                {
                    "timestamp": f"2026-01-01T00:{10 + i:02d}:00",
                    **dict(zip(names, X[10 + i].tolist(), strict=True)),
                }
                for i in range(5)
            ]
        }
        r2 = c.post("/v1/series/host-b/points", json=named)
        assert r2.status_code == 200, r2.text
    scores = [p["score"] for p in r.json()["final"] + r2.json()["final"]]
    np.testing.assert_allclose(scores, dets["host-b"].decision_function(X[:15]), rtol=1e-9)
    assert r.json()["final"][0]["timestamp"] == "2026-01-01T00:00:00"


def test_state_and_open_events_survive_a_restart(models, data, tmp_path):
    root, dets = models
    state = tmp_path / "state.sqlite"
    X = data.test.copy()
    X[100:140] += 8.0  # one long anomaly, open across the restart
    rules = EventRules(min_duration=2)
    with (
        Server(create_app(root, state=state, rules=rules)) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as c,
    ):
        first = [
            p["score"]
            for a in range(0, 120, 30)
            for p in _post(c, "host-b", X[a : a + 30], a).json()["final"]
        ]
        before = c.get("/v1/series/host-b/events", params={"status": "open"}).json()["events"]
    assert len(before) == 1 and before[0]["start_pos"] <= 101
    with (
        Server(create_app(root, state=state, rules=rules)) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as c,
    ):
        assert c.get("/v1/series/host-b/events", params={"status": "open"}).json()["events"] == before
        dup = _post(c, "host-b", X[119:121], 119)
        assert dup.status_code == 409  # the restarted service knows the last timestamp
        rest = [
            p["score"]
            for a in range(120, 300, 30)
            for p in _post(c, "host-b", X[a : a + 30], a).json()["final"]
        ]
        closed = c.get("/v1/series/host-b/events", params={"status": "closed"}).json()["events"]
    np.testing.assert_allclose(first + rest, dets["host-b"].decision_function(X), rtol=1e-9)
    batch = dets["host-b"].events(X, rules=rules)
    assert [(e["start_pos"], e["end_pos"]) for e in closed] == list(
        zip(batch["start_pos"], batch["end_pos"], strict=True)
    )
    assert any(e["event"] == before[0]["event"] for e in closed)


def test_metrics_parse_as_prometheus_text(models, data, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families

    root, _ = models
    with (
        Server(create_app(root, state=tmp_path / "s.sqlite")) as srv,
        httpx.Client(base_url=srv.url, timeout=60) as c,
    ):
        _post(c, "host-a", data.test[:60])
        _post(c, "host-b", data.test[:60])
        text = c.get("/metrics").text
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    ingested = {
        s.labels["series"]: s.value
        for s in fams["diffad_points_ingested"].samples
        if s.name.endswith("_total")
    }
    assert ingested == {"host-a": 60.0, "host-b": 60.0}
    assert any(
        s.name == "diffad_request_seconds_count" and s.value == 2
        for s in fams["diffad_request_seconds"].samples
    )
    ages = [s.value for s in fams["diffad_model_age_seconds"].samples]
    assert len(ages) == 2 and all(a >= 0 for a in ages)
    assert "diffad_open_events" in fams and "diffad_scoring_seconds" in fams


def test_a_token_is_required_off_loopback(models, data, tmp_path):
    root, _ = models
    env = {**os.environ, "DIFFAD_TOKEN": ""}
    refused = subprocess.run(
        [sys.executable, "-m", "diffad.cli", "serve", "--models", str(root), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in env.items() if k != "DIFFAD_TOKEN"},
    )
    assert refused.returncode == 2 and "token" in refused.stderr
    app = create_app(root, state=tmp_path / "t.sqlite", token="s3cret-token")
    with Server(app, host="0.0.0.0") as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert c.get("/healthz").status_code == 200  # liveness needs no token
        assert _post(c, "host-b", data.test[:3]).status_code == 401
        assert c.get("/metrics").status_code == 401
        assert c.get("/v1/series", headers={"Authorization": "Bearer wrong"}).status_code == 401
        ok = _post(c, "host-b", data.test[:3], headers={"Authorization": "Bearer s3cret-token"})
        assert ok.status_code == 200 and len(ok.json()["final"]) == 3


def test_the_cli_serves_a_fleet_folder(models, data, tmp_path):
    root, _ = models
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diffad.cli",
            "serve",
            "--models",
            str(root),
            "--port",
            str(port),
            "--state",
            str(tmp_path / "cli.sqlite"),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        r = httpx.post(
            url + "/v1/series/host-a/points?provisional=true", json=_points(data.test[:40]), timeout=60
        )
        assert r.status_code == 200, r.text
        body = r.json()
        final = len(body["final"])
        assert body["provisional"]["start"] == final and final + len(body["provisional"]["scores"]) == 40
        assert json.loads(httpx.get(url + "/v1/series", timeout=5).text)["series"][0]["series"] == "host-a"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_background_retraining_swaps_models_and_reports_it_in_metrics(models, data, tmp_path):
    root, _ = models
    app = create_app(root, state=tmp_path / "state.sqlite", retrain_every=60)
    X = data.test
    with Server(app) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        assert _post(c, "host-b", X[:80]).status_code == 200  # 80 final points: a refit starts
        retrains, a = 0.0, 80
        for _ in range(100):  # later posts swap the refitted model in once its fit has ended
            time.sleep(0.05)
            assert _post(c, "host-b", X[a : a + 2], a).status_code == 200
            a += 2
            text = c.get("/metrics").text
            line = [ln for ln in text.splitlines() if ln.startswith('diffad_model_retrains{series="host-b"}')]
            if line:
                retrains = float(line[0].split()[-1])
                break
        assert retrains >= 1
