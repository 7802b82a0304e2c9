"""diffad.fsio: output folders as one unit (checks, atomic swap, locks, leftovers)."""

import os
import sys

import pytest

from diffad.exceptions import PersistenceError
from diffad.fsio import _exchange, check_output, output_folder


def _write_run(folder, text):
    (folder / "scores.csv").write_text(text)
    (folder / "run.json").write_text('{"format": "diffad-run", "files": ["scores.csv"]}')


def test_an_error_inside_leaves_the_old_folder_and_no_staging(tmp_path):
    with output_folder(tmp_path / "out", "run") as stage:
        _write_run(stage, "old")
    with pytest.raises(RuntimeError), output_folder(tmp_path / "out", "run") as stage:
        _write_run(stage, "new")
        raise RuntimeError("crash while writing")
    assert (tmp_path / "out" / "scores.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="renameat2 is Linux's")
def test_the_swap_is_one_exchange_on_linux(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b" / "y").write_text("b")
    assert _exchange(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a" / "y").is_file() and (tmp_path / "b" / "x").is_file()


def test_staging_folders_of_dead_processes_are_swept(tmp_path):
    dead = tmp_path / ".out.partial.999999999.abc"
    dead.mkdir()
    live = tmp_path / f".out.partial.{os.getpid()}.abc"
    live.mkdir()
    with output_folder(tmp_path / "out", "run") as stage:
        _write_run(stage, "x")
    assert not dead.exists() and live.exists()


def test_model_folder_with_only_a_checkpoint_is_ours_and_a_foreign_json_is_not(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "checkpoint.json").write_text('{"format": "diffad-checkpoint"}')
    (tmp_path / "m" / "checkpoint.pt").write_bytes(b"x")
    check_output(tmp_path / "m", "model")
    (tmp_path / "n").mkdir()
    (tmp_path / "n" / "detector.json").write_text('{"format": "something-else"}')
    with pytest.raises(PersistenceError, match="did not write"):
        check_output(tmp_path / "n", "model")
