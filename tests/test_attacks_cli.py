"""``shallowcert attack`` end to end on a tiny IDX dataset, and its one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from attacks_support import one_thread  # noqa: F401  (autouse fixture)
from conftest import make_idx_dataset
from shallowcert.cli import main
from shallowcert.models import build, save_model


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, list[str]]:
    data = make_idx_dataset(tmp_path / "mnist", n_train=40, n_test=30)
    models = []
    for seed, spec in ((0, "snn:8"), (1, "layers:c2k4s2p1,relu,flat,fc")):
        torch.manual_seed(seed)
        path = tmp_path / f"model{seed}"
        save_model(path, build(spec, (1, 28, 28), 10), spec=spec, input_shape=(1, 28, 28), classes=10)
        models += ["--model", str(path)]
    return data, models


def test_attack_writes_json_csv_and_plot(tmp_path: Path, setup, capsys) -> None:
    data, models = setup
    out = tmp_path / "attack"
    assert main(["attack", *models, "--dataset", "mnist", "--data-dir", str(data), "--attack", "pgd",
                 "--eps", "0:0.03:4", "--steps", "5", "--relative-step", "0.5", "--limit", "25",
                 "--out", str(out)]) == 0
    report = json.loads((out / "attack.json").read_text())
    assert report["n"] == 25 and report["eps"] == [0.0, 0.01, 0.02, 0.03] and report["attack_name"] == "pgd"
    assert report["attack"] == ("PGD(steps=5, relative_step=0.5, random_start=True, restarts=1, seed=0) "
                                "with early stop")
    assert [m["model"] for m in report["models"]] == [models[1], models[3]]
    for model in report["models"]:
        curve = model["robust_accuracy"]
        assert curve[0] == model["clean_accuracy"] and all(b <= a for a, b in zip(curve, curve[1:]))
        assert len(model["breaking_eps"]) == 25
    rows = list(csv.DictReader((out / "attack.csv").open()))
    assert len(rows) == 8 and rows[5]["model"] == models[3]
    assert float(rows[5]["robust_accuracy"]) == report["models"][1]["robust_accuracy"][1]
    assert (out / "attack.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(capsys.readouterr().out)["n"] == 25


@pytest.mark.parametrize("extra, message", [
    (["--attack", "fgsm", "--steps", "3"], "fgsm does not take --steps"),
    (["--attack", "bim", "--random-start"], "bim does not take --random-start"),
    (["--step-size", "0.01", "--relative-step", "0.5"], "not both"),
    (["--eps", "0.2,0.1"], "increasing order"),
    (["--eps", "0:0.1"], "bad eps grid"),
])
def test_attack_user_errors(tmp_path: Path, setup, capsys, extra: list[str], message: str) -> None:
    data, models = setup
    args = ["attack", *models[:2], "--dataset", "mnist", "--data-dir", str(data), "--eps", "0.1",
            "--limit", "5", "--out", str(tmp_path / "never")]
    assert main(args + extra) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "never").exists()
