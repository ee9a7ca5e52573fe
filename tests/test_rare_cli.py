"""``phasetools rare escape``: a tiny end-to-end run (stores, prints, refuses bad input)."""

import json

import pytest

from phasetools.cli import main
from phasetools.io import load

SMALL = ["--n-replicas", "10", "--n-kill", "1", "--n-runs", "2", "--n-walkers", "10", "--n-rounds", "2", "--quiet"]


def test_rare_escape_stores_and_prints_json(tmp_path, capsys):
    out = tmp_path / "ams.h5"
    code = main(["rare", "escape", "--model", "double_well", "--barrier-ratio", "4", "--seed", "1", "--json",
                 "--out", str(out), *SMALL])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    point = summary["points"][0]
    assert point["temperature"] == pytest.approx(0.25 / 4)
    assert point["tau_lower"] < point["tau"] < point["tau_upper"]
    stored = load(out, summary["stored"][0])
    assert stored.tau == point["tau"]


def test_rare_escape_needs_one_of_temperature_and_barrier_ratio(capsys):
    assert main(["rare", "escape", "--model", "double_well", *SMALL]) == 2
    assert "--temperature" in capsys.readouterr().err
