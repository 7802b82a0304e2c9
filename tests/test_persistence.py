import json

import numpy as np
import pytest

import diffad
from diffad import (
    IsolationForestDetector,
    KNNDetector,
    LOFDetector,
    PCADetector,
    PersistenceError,
    RandomDetector,
)
from diffad.persistence import atomic_write_text

DETECTORS = [
    RandomDetector(random_state=1),
    PCADetector(),
    IsolationForestDetector(n_estimators=20, random_state=3),
    KNNDetector(),
    LOFDetector(n_neighbors=10),
]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(300, 4)), rng.normal(size=(80, 4))


@pytest.mark.parametrize("det", DETECTORS, ids=lambda d: type(d).__name__)
def test_save_load_gives_identical_scores(det, data, tmp_path):
    train, test = data
    det.fit(train)
    det.save(tmp_path / "m")
    back = diffad.load(tmp_path / "m")
    assert type(back) is type(det) and back.get_params() == det.get_params()
    np.testing.assert_array_equal(back.decision_function(test), det.decision_function(test))
    assert back.threshold_ == det.threshold_ and back.n_features_in_ == 4
    np.testing.assert_array_equal(back.decision_scores_, det.decision_scores_)


def test_envelope_and_no_pickle(data, tmp_path):
    PCADetector().fit(data[0]).save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "detector.json").read_text())
    assert (
        meta["format"] == "diffad-detector"
        and meta["class"] == "PCADetector"
        and meta["diffad_version"] == diffad.__version__
    )
    with np.load(tmp_path / "m" / "arrays.npz", allow_pickle=False) as z:
        assert "components_" in z.files


def test_overwrite_replaces_folder(data, tmp_path):
    PCADetector(n_components=1).fit(data[0]).save(tmp_path / "m")
    PCADetector(n_components=2).fit(data[0]).save(tmp_path / "m")
    assert diffad.load(tmp_path / "m").n_components == 2
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temporary leftovers


def test_missing_folder_and_file(tmp_path):
    with pytest.raises(PersistenceError, match="not a folder"):
        diffad.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PersistenceError, match="expected .*detector.json"):
        diffad.load(tmp_path / "empty")


def test_corrupt_truncated_foreign(data, tmp_path):
    PCADetector().fit(data[0]).save(tmp_path / "m")
    meta = tmp_path / "m" / "detector.json"
    good = meta.read_text()
    meta.write_text(good[: len(good) // 2])
    with pytest.raises(PersistenceError, match="corrupt or truncated"):
        diffad.load(tmp_path / "m")
    meta.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(PersistenceError, match="not written by diffad"):
        diffad.load(tmp_path / "m")
    meta.write_text(good.replace('"PCADetector"', '"EvilDetector"'))
    with pytest.raises(PersistenceError, match="unknown detector class 'EvilDetector'"):
        diffad.load(tmp_path / "m")
    meta.write_text(good)
    arrays = tmp_path / "m" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:100])
    with pytest.raises(PersistenceError, match="arrays.npz is corrupt or truncated"):
        diffad.load(tmp_path / "m")
    arrays.unlink()
    with pytest.raises(PersistenceError, match="incomplete"):
        diffad.load(tmp_path / "m")


def test_atomic_write_gives_the_permissions_of_a_plain_write(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "x")
    (tmp_path / "b.txt").write_text("x")
    assert (tmp_path / "a.txt").stat().st_mode == (tmp_path / "b.txt").stat().st_mode


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out.txt"]
