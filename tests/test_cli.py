from typer.testing import CliRunner

from diffad.cli import app

runner = CliRunner()


def test_info():
    r = runner.invoke(app, ["info"])
    assert r.exit_code == 0 and "diffad" in r.output and "torch" in r.output and "device" in r.output


def test_help_on_every_command():
    for args in (["--help"], ["info", "--help"], ["data", "--help"], ["data", "list", "--help"], ["data", "show", "--help"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 0 and "Usage" in r.output, args


def test_data_list_without_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("DIFFAD_DATA", raising=False)
    r = runner.invoke(app, ["data", "list"])
    assert r.exit_code == 0 and "SMD" in r.output and "ADBench" in r.output


def test_data_list_and_show(shared_data):
    r = runner.invoke(app, ["data", "list", "--data-dir", str(shared_data)])
    assert r.exit_code == 0
    line = next(ln for ln in r.output.splitlines() if ln.startswith("SMD "))
    assert " 14 " in line
    r = runner.invoke(app, ["data", "show", "SMD/machine-1-2", "--data-dir", str(shared_data)])
    assert r.exit_code == 0 and "23694 x 38" in r.output and "2.29 %" in r.output and "segments       10" in r.output
    r = runner.invoke(app, ["data", "show", "UCR", "--data-dir", str(shared_data)])
    assert r.exit_code == 0 and r.output.count("UCR/") == 4


def test_data_show_missing_gives_clean_error(tmp_path):
    r = runner.invoke(app, ["data", "show", "SMD/machine-1-2", "--data-dir", str(tmp_path)])
    assert r.exit_code == 2 and "expected npz/machine-1-2.npz" in r.output and "Traceback" not in r.output
