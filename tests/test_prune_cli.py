"""``shallowcert prune`` end to end on the real Fashion-MNIST (a random small model)."""

import json

import pytest
import torch

from shallowcert.cli import main
from shallowcert.data import files_found
from shallowcert.models import build, count_params, load_model, save_model

pytestmark = pytest.mark.skipif(not files_found("fashion-mnist"), reason="Fashion-MNIST files not found")

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("prune") / "model"
    save_model(path, build("scnn2:4-6", SHAPE, 10), spec="scnn2:4-6", input_shape=SHAPE, classes=10)
    return path


def test_count_rule_writes_pruned_model_report_and_histograms(model_dir, tmp_path, capsys):
    out = tmp_path / "pruned"
    assert main(["prune", "--model", str(model_dir), "--count", "0=1,3=2", "--out", str(out)]) == 0
    report = json.loads((out / "prune.json").read_text())
    assert report["params_before"] == 3660
    assert report["params_after"] == 78 + 304 + 1970  # see test_prune_surgery for the arithmetic
    assert report["flops_after"] < report["flops_before"]
    assert [row["filters_kept"] for row in report["layers"]] == [3, 4]
    assert report["selection"] == {"rule": "count", "values": {"0": 1.0, "3": 2.0}}
    for key in ("val_accuracy_before", "val_accuracy_after", "test_accuracy_before", "test_accuracy_after"):
        assert 0.0 <= report[key] <= 1.0
    loaded = load_model(out)
    assert count_params(loaded.model) == report["params_after"]
    assert sorted(p.name for p in out.glob("*.png")) == ["l1-norms-layer0.png", "l1-norms-layer3.png"]
    assert json.loads(capsys.readouterr().out)["params_after"] == report["params_after"]


def test_default_search_keeps_validation_accuracy(model_dir, tmp_path):
    out = tmp_path / "searched"
    assert main(["prune", "--model", str(model_dir), "--out", str(out)]) == 0
    report = json.loads((out / "prune.json").read_text())
    assert report["selection"] == {"rule": "search", "max_drop": 0.0}
    assert report["val_accuracy_after"] >= report["val_accuracy_before"]


@pytest.mark.parametrize("extra, message", [
    (["--ratio", "1.5"], "[0, 1)"),
    (["--count", "2=1"], "not a Conv2d"),
    (["--count", "0=4"], "would leave none"),
])
def test_mistakes_give_one_line_errors(model_dir, tmp_path, capsys, extra, message):
    code = main(["prune", "--model", str(model_dir), "--out", str(tmp_path / "x"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0 and message in err
    assert not (tmp_path / "x").exists()


def test_malformed_per_layer_values_are_rejected_by_the_parser(model_dir, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--model", str(model_dir), "--out", str(tmp_path / "x"), "--ratio", "x=0.5"])
    assert exit_info.value.code == 2 and "POSITION=VALUE" in capsys.readouterr().err
