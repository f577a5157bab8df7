"""The complete verifier on VNN-COMP known-answer cases (fast subset), and ``shallowcert verify``.

No ``sat`` case is ever answered ``unsat``; every ``sat`` answer's counterexample lies in the
box and reaches the unsafe set under onnxruntime; the ``test`` benchmark is solved exactly.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest
import torch

from shallowcert.cli import main
from shallowcert.models.onnx_import import import_onnx
from shallowcert.verify import verify
from shallowcert.verify.vnnlib import read_vnnlib
from shallowcert.verify.witness import read_counterexample

ROOT = Path("/work/shared/vnncomp")
pytestmark = pytest.mark.skipif(not ROOT.exists(), reason="VNN-COMP files not present")
pytest.importorskip("onnxruntime")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from vnncomp import onnxruntime_check  # noqa: E402

MNIST_SUBSET = ("prop_0_0.03", "prop_1_0.03", "prop_2_0.03", "prop_12_0.03", "prop_0_0.05")


def _cases() -> list[dict[str, str]]:
    with open(ROOT / "cases.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [r for r in rows if r["benchmark"] == "test" or
            (r["onnx"].endswith("256x2.onnx") and Path(r["vnnlib"]).stem in MNIST_SUBSET)]


@pytest.mark.parametrize("row", _cases(), ids=lambda r: f"{Path(r['onnx']).stem}-{Path(r['vnnlib']).stem}")
def test_verdicts_are_sound_and_counterexamples_hold(row: dict[str, str]) -> None:
    torch.manual_seed(0)
    net = import_onnx(ROOT / row["onnx"])
    prop = read_vnnlib(ROOT / row["vnnlib"], input_shape=net.input_shape, outputs=net.outputs)
    result = verify(net.model, prop, timeout=10.0, device="cpu")
    if row["expected"] == "sat":
        assert result.status != "unsat"
    if result.status == "sat":
        assert onnxruntime_check(ROOT / row["onnx"], prop, result.counterexample)
    if row["benchmark"] == "test":
        assert result.status == row["expected"]


def test_verify_cli_writes_a_checked_counterexample(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    onnx_path, vnnlib = ROOT / "test/onnx/test_sat.onnx", ROOT / "test/vnnlib/test_prop.vnnlib"
    assert main(["verify", "--onnx", str(onnx_path), "--vnnlib", str(vnnlib), "--timeout", "10",
                 "--device", "cpu", "--out", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "sat"
    record = json.loads((tmp_path / "run" / "result.json").read_text())
    assert record["status"] == "sat" and record["counterexample"]["in_box"]
    x, y = read_counterexample(tmp_path / "run" / "counterexample.txt")
    net = import_onnx(onnx_path)
    prop = read_vnnlib(vnnlib, input_shape=net.input_shape, outputs=net.outputs)
    assert onnxruntime_check(onnx_path, prop, x)
    torch.testing.assert_close(y.float(), net.model(x.float().reshape(1, *net.input_shape))[0].detach(),
                               rtol=0, atol=1e-6)


def test_verify_cli_on_a_model_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import", "--onnx", str(ROOT / "test/onnx/test_small.onnx"), "--out", str(tmp_path / "m")]) == 0
    capsys.readouterr()
    assert main(["verify", "--model", str(tmp_path / "m"), "--vnnlib", str(ROOT / "test/vnnlib/test_small.vnnlib"),
                 "--device", "cpu", "--out", str(tmp_path / "run")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "unsat"
    assert json.loads((tmp_path / "run" / "result.json").read_text())["status"] == "unsat"
    assert not (tmp_path / "run" / "counterexample.txt").exists()


def test_verify_cli_refuses_a_mismatched_property(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--onnx", str(ROOT / "test/onnx/test_small.onnx"),
                 "--vnnlib", str(ROOT / "test/vnnlib/test_prop.vnnlib"), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("shallowcert: error:") and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
