import re

import numpy as np
import pandas as pd
import pytest

from diffad import DataValidationError
from diffad.data import list_entities, load_dataset, load_datasets, read_series, resolve_data_dir


# ------------------------------------------------------------------ user files
def test_read_csv_with_timestamp_and_label(tmp_path):
    p = tmp_path / "s.csv"
    pd.DataFrame(
        {
            "timestamp": pd.date_range("2024-01-01", periods=5, freq="h"),
            "cpu": np.arange(5.0),
            "mem": 1.0,
            "label": [0, 0, 1, 0, 0],
        }
    ).to_csv(p, index=False)
    s = read_series(p)
    assert s.values.shape == (5, 2) and s.channels == ("cpu", "mem")
    assert isinstance(s.index, pd.DatetimeIndex) and s.index[1] == pd.Timestamp("2024-01-01 01:00")
    assert s.labels.tolist() == [0, 0, 1, 0, 0]


def test_read_csv_non_numeric_column_is_an_error(tmp_path):
    p = tmp_path / "s.csv"
    pd.DataFrame({"a": [1.0, 2.0], "host": ["x", "y"]}).to_csv(p, index=False)
    with pytest.raises(
        DataValidationError, match=r"expected numeric channels.*got non-numeric column\(s\) \['host'\]"
    ):
        read_series(p)


def test_read_parquet_npz_npy(tmp_path):
    X = np.random.default_rng(0).normal(size=(7, 3))
    pd.DataFrame(X, columns=list("abc")).assign(label=[0, 1, 0, 0, 0, 0, 0]).to_parquet(
        tmp_path / "s.parquet"
    )
    s = read_series(tmp_path / "s.parquet")
    np.testing.assert_allclose(s.values, X)
    assert s.labels.sum() == 1
    np.savez(tmp_path / "s.npz", values=X, labels=np.arange(7) == 3)
    s = read_series(tmp_path / "s.npz")
    np.testing.assert_allclose(s.values, X)
    assert s.labels.tolist() == [0, 0, 0, 1, 0, 0, 0]
    np.save(tmp_path / "s.npy", X[:, 0])
    assert read_series(tmp_path / "s.npy").values.shape == (7, 1)


def test_read_series_missing_file_and_bad_type(tmp_path):
    with pytest.raises(DataValidationError, match="expected an existing file"):
        read_series(tmp_path / "nope.csv")
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(DataValidationError, match=r"expected \.csv, \.parquet, \.npz or \.npy"):
        read_series(tmp_path / "x.xlsx")


# ------------------------------------------------------------------ registry and upstream layouts
def test_data_dir_from_env_or_error(tmp_path, monkeypatch):
    monkeypatch.delenv("DIFFAD_DATA", raising=False)
    with pytest.raises(DataValidationError, match="DIFFAD_DATA"):
        resolve_data_dir()
    monkeypatch.setenv("DIFFAD_DATA", str(tmp_path))
    assert resolve_data_dir() == tmp_path


def test_unknown_collection_and_missing_files(tmp_path):
    with pytest.raises(DataValidationError, match=r"collection in \['SMD'"):
        load_dataset("FOO/x", tmp_path)
    with pytest.raises(
        DataValidationError, match=r"SMD: expected npz/machine-1-1.npz or train/machine-1-1.txt.*OmniAnomaly"
    ):
        load_dataset("SMD/machine-1-1", tmp_path)
    with pytest.raises(DataValidationError, match="PSM/train.csv"):
        load_dataset("PSM", tmp_path)


def test_smd_original_txt_layout(tmp_path):
    root = tmp_path / "ServerMachineDataset"
    rng = np.random.default_rng(0)
    for sub in ("train", "test", "test_label", "interpretation_label"):
        (root / sub).mkdir(parents=True)
    np.savetxt(root / "train" / "machine-9-9.txt", rng.random((30, 4)), delimiter=",")
    np.savetxt(root / "test" / "machine-9-9.txt", rng.random((20, 4)), delimiter=",")
    np.savetxt(root / "test_label" / "machine-9-9.txt", (np.arange(20) >= 15).astype(int), fmt="%d")
    (root / "interpretation_label" / "machine-9-9.txt").write_text("15-19:1,3\n")
    ds = load_dataset("SMD/machine-9-9", tmp_path)
    assert ds.train.shape == (30, 4) and ds.test.shape == (20, 4) and ds.test_labels.sum() == 5
    assert ds.meta["interpretation"] == [(15, 19, (0, 2))]
    assert list_entities("SMD", tmp_path) == ["SMD/machine-9-9"]


def test_telemanom_original_layout(tmp_path):
    root = tmp_path / "telemanom"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for chan, craft in (("A-1", "SMAP"), ("P-2", "SMAP"), ("M-1", "MSL")):
        np.save(root / "train" / f"{chan}.npy", rng.random((40, 3)))
        np.save(root / "test" / f"{chan}.npy", rng.random((50, 3)))
        rows.append(
            {
                "chan_id": chan,
                "spacecraft": craft,
                "anomaly_sequences": "[[10, 14], [30, 31]]",
                "class": "[point]",
                "num_values": 50,
            }
        )
    pd.DataFrame(rows).to_csv(root / "labeled_anomalies.csv", index=False)
    one = load_dataset("SMAP/A-1", tmp_path)
    assert (
        one.test_labels.sum() == 7 and one.test_labels[14] == 1 and one.test_labels[15] == 0
    )  # inclusive ends
    whole = load_dataset("SMAP", tmp_path)
    assert whole.train.shape == (40, 3) and whole.meta["channels_concatenated"] == ["A-1"]  # P-2 dropped
    assert load_dataset("MSL", tmp_path).test.shape == (50, 3)


def test_psm_layout(tmp_path):
    root = tmp_path / "PSM"
    root.mkdir()
    rng = np.random.default_rng(0)
    cols = {f"feature_{i}": rng.random(10) for i in range(3)}
    pd.DataFrame({"timestamp_(min)": np.arange(10), **cols}).to_csv(root / "train.csv", index=False)
    pd.DataFrame({"timestamp_(min)": np.arange(10, 20), **cols}).to_csv(root / "test.csv", index=False)
    pd.DataFrame({"timestamp_(min)": np.arange(10, 20), "label": [0] * 8 + [1, 1]}).to_csv(
        root / "test_label.csv", index=False
    )
    ds = load_dataset("PSM", tmp_path)
    assert ds.train.shape == (10, 3) and ds.test_labels.sum() == 2


def test_swat_layout(tmp_path):
    root = tmp_path / "SWaT"
    root.mkdir()
    df = pd.DataFrame(
        {
            " Timestamp": pd.date_range("2015-12-22", periods=6, freq="s").astype(str),
            "FIT101": np.arange(6.0),
            "LIT101": 1.0,
        }
    )
    df.assign(**{"Normal/Attack": "Normal"}).to_csv(root / "SWaT_Dataset_Normal_v1.csv", index=False)
    df.assign(**{"Normal/Attack": ["Normal", "Attack", "A ttack", "Normal", "Normal", "Normal"]}).to_csv(
        root / "SWaT_Dataset_Attack_v0.csv", index=False
    )
    ds = load_dataset("SWaT", tmp_path)
    assert ds.test.shape == (6, 2) and ds.test_labels.tolist() == [0, 1, 1, 0, 0, 0]


def test_gcp_layout(tmp_path):
    root = tmp_path / "GCP"
    for sub in ("train", "test", "test_label"):
        (root / sub).mkdir(parents=True)
    np.savetxt(root / "train" / "service0.csv", np.random.default_rng(0).random((12, 2)), delimiter=",")
    np.savetxt(root / "test" / "service0.csv", np.random.default_rng(1).random((8, 2)), delimiter=",")
    np.savetxt(root / "test_label" / "service0.csv", [0, 0, 1, 1, 0, 0, 0, 0], fmt="%d")
    assert [d.name for d in load_datasets("GCP", tmp_path)] == ["GCP/service0"]


def test_collection_name_in_load_dataset_points_to_load_datasets(shared_data):
    with pytest.raises(DataValidationError, match=r"load_datasets\('SMD'\)"):
        load_dataset("SMD", shared_data)


# ------------------------------------------------------------------ every dataset in ../shared/data
def _readme_table(path, first_col):
    rows = {}
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 3 and re.match(first_col, cells[0]):
            rows[cells[0]] = cells
    return rows


def test_every_smd_machine_matches_readme(shared_data):
    table = _readme_table(shared_data / "SMD" / "README.md", r"machine-")
    datasets = load_datasets("SMD", shared_data)
    assert len(datasets) == 14
    for ds in datasets:
        _, here, n_train, n_test, n_anom, pct, _ = table[ds.entity]
        assert here == "yes"
        assert ds.train.shape == (int(n_train), 38) and ds.test.shape == (int(n_test), 38)
        assert ds.test_labels.sum() == int(n_anom)
        assert round(100 * ds.anomaly_ratio, 2) == float(pct)


def test_smap_msl_concatenated_match_readme(shared_data):
    smap, msl = load_dataset("SMAP", shared_data), load_dataset("MSL", shared_data)
    assert smap.train.shape == (135183, 25) and smap.test.shape == (427617, 25)
    assert len(smap.meta["channels_concatenated"]) == 53 and round(100 * smap.anomaly_ratio, 2) == 12.79
    assert msl.train.shape == (58317, 55) and msl.test.shape == (73729, 55)
    assert len(msl.meta["channels_concatenated"]) == 27 and round(100 * msl.anomaly_ratio, 2) == 10.53
    entities = list_entities("SMAP", shared_data)
    assert entities == ["SMAP"]
    a1 = load_dataset("SMAP/A-1", shared_data)
    assert a1.test.shape[1] == 25 and a1.test_labels.any()


def test_every_smap_msl_channel_loads(shared_data):
    from diffad.data.loaders import COLLECTIONS

    n = 0
    for craft in ("SMAP", "MSL"):
        for e in COLLECTIONS[craft].entities(shared_data)[1:]:
            ds = load_dataset(f"{craft}/{e}", shared_data)
            assert ds.test.shape[0] == len(ds.test_labels) and ds.test_labels.any()
            n += 1
    assert n == 54 + 27  # 82 channel files less T-10 (no csv row); P-2 counted once


def test_nab_matches_readme(shared_data):
    datasets = load_datasets("NAB", shared_data)
    assert len(datasets) == 58
    total = sum(len(d.test) for d in datasets)
    anom = sum(int(d.test_labels.sum()) for d in datasets)
    assert total == 365558
    assert round(100 * anom / total, 2) == 9.16
    nyc = load_dataset("NAB/nyc_taxi", shared_data)
    assert nyc.name == "NAB/realKnownCause/nyc_taxi" and len(nyc.train) == int(0.15 * len(nyc.test))


def test_ucr_matches_readme(shared_data):
    table = _readme_table(shared_data / "UCR" / "README.md", r"13\d_UCR")
    datasets = load_datasets("UCR", shared_data)
    assert len(datasets) == 4
    for ds in datasets:
        _, length, train_end, anomaly, pct = table[ds.entity.rsplit("_", 3)[0]]
        begin, end = map(int, anomaly.replace("–", "-").split("-"))
        assert len(ds.train) + len(ds.test) == int(length) and len(ds.train) == int(train_end)
        assert ds.test_labels.sum() == end - begin + 1
        assert round(100 * ds.anomaly_ratio, 2) == float(pct)
    assert load_dataset("UCR/135", shared_data).entity.startswith("135_")


def test_tsb_ad_matches_readme(shared_data):
    table = _readme_table(shared_data / "TSB-AD" / "README.md", r"TSB-AD-[UM]/")
    for key, (_, shape, n_anom, pct, first) in table.items():
        ds = load_dataset("TSB-AD/" + key.split("/")[1].removesuffix(".csv"), shared_data)
        rows, feats = map(int, shape.split(" x "))
        assert ds.test.shape == (rows, feats) and ds.test_labels.sum() == int(n_anom)
        assert round(100 * ds.anomaly_ratio, 2) == float(pct) and np.flatnonzero(ds.test_labels)[0] == int(
            first
        )


def test_adbench_matches_readme(shared_data):
    table = _readme_table(shared_data / "ADBench" / "README.md", r"\d+_.*\.npz")
    datasets = load_datasets("ADBench", shared_data)
    assert len(datasets) == 35
    for ds in datasets:
        _, n, d, _, n_anom, pct, _ = table[ds.entity + ".npz"]
        assert (
            ds.kind == "tabular"
            and ds.train.shape == (int(n), int(d))
            and ds.test_labels.sum() == int(n_anom)
        )
        assert round(100 * ds.anomaly_ratio, 2) == float(pct)
    assert load_dataset("ADBench/shuttle", shared_data).name == "ADBench/32_shuttle"


def test_mvtec_tire_images_match_readme(shared_data):
    from diffad.data import load_images

    s = load_images("MVTec3D/tire", shared_data)
    assert s.train.shape == (10, 3, 800, 600) and s.train.dtype == np.uint8
    assert s.test.shape == (14, 3, 800, 600) and s.test_masks.shape == (14, 800, 600)
    assert s.test_kinds.count("good") == 2 and set(s.test_kinds) == {
        "combined",
        "contamination",
        "cut",
        "good",
        "hole",
    }
    cut0 = s.test_masks[s.test_kinds.index("cut")]
    assert int((cut0 > 0).sum()) == 947 and set(np.unique(cut0)) == {0, 254}
    for kind, m in zip(s.test_kinds, s.test_masks, strict=True):
        frac = (m > 0).mean()
        assert (frac == 0) if kind == "good" else (0 < frac < 0.05)
    small = load_images("MVTec3D/tire", shared_data, size=(64, 48))
    assert small.train.shape == (10, 3, 64, 48) and small.test_masks.shape == (14, 64, 48)


def test_images_missing_gives_clear_error(tmp_path):
    from diffad.data import load_images

    with pytest.raises(DataValidationError, match="MVTec3D/tire: expected train/good/rgb"):
        load_images("MVTec3D/tire", tmp_path)
