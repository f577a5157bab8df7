"""The committed ``examples/fashion-mnist/`` run: it is the preset at full size, and its report
regenerates from its records alone (no weights are committed) with the same claims."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from shallowcert.report import write_report
from shallowcert.study.presets import PRESETS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fashion-mnist"


def test_the_example_is_the_preset_at_full_size() -> None:
    run = json.loads((EXAMPLE / "run.json").read_text())
    preset = PRESETS["fashion-mnist"]
    assert run["config"]["seeds"] == preset["seeds"] == [0, 1, 2]
    certification = json.loads((EXAMPLE / "certification" / "results.json").read_text())
    assert all(seed["n"] == preset["certification"]["points"] >= 1000 for seed in certification["by_seed"].values())
    assert not list(EXAMPLE.rglob("*.safetensors"))


def test_the_report_regenerates_with_the_same_claims(tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(EXAMPLE, copy)
    write_report(copy)
    committed = json.loads((EXAMPLE / "report.json").read_text())["claims"]
    regenerated = json.loads((copy / "report.json").read_text())["claims"]
    assert [(c["statement"], c["holds"]) for c in regenerated] == [(c["statement"], c["holds"]) for c in committed]
