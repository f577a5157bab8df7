"""``examples/fashion-mnist/``: the committed run of the fashion-mnist preset is what it says.

It must be a finished run of the preset as committed (same config, 3 seeds, 1,000 points),
at a recorded commit, within the 2.5 h budget, small (no weights), and its report must be
what this version writes from its artifacts: the claims and the targets are regenerated
here and compared with the committed ``report.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from shallowcert.report import write_report
from shallowcert.study.config import load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fashion-mnist"
BUDGET_SECONDS = 9000
SIZE_LIMIT = 20 * 1024 * 1024


@pytest.fixture(scope="module")
def run() -> dict:
    return json.loads((EXAMPLE / "run.json").read_text())


def test_it_is_a_finished_run_of_the_committed_preset(run: dict) -> None:
    preset = load_config(preset="fashion-mnist")
    recorded = dict(run["config"])
    assert recorded.pop("targets", None) in (None, preset.targets.to_json() if preset.targets else None)
    expected = preset.to_json()
    expected.pop("targets", None)
    assert recorded == expected
    assert run["config"]["seeds"] == [0, 1, 2]
    assert run["environment"]["commit"] and not run["environment"]["commit"].endswith("-dirty")
    assert run["environment"]["cpu_count"] == 2 and run["executor"]["parallel_jobs"] == 2
    assert 0 < run["wall_seconds"] <= BUDGET_SECONDS
    assert 0.75 <= run["wall_seconds"] / run["planned_wall_seconds"] <= 1.25
    assert sum(s["jobs"] for s in run["stages"].values()) == 135
    assert all(s["jobs_reused"] == 0 for s in run["stages"].values())  # one invocation did all the work


def test_certification_and_attacks_cover_1000_points_on_every_seed() -> None:
    for stage in ("certification", "attacks"):
        results = json.loads((EXAMPLE / stage / "results.json").read_text())
        assert results["seeds"] == [0, 1, 2]
        assert all(results["by_seed"][str(s)]["n"] == 1000 for s in results["seeds"])


def test_the_folder_is_small_and_holds_no_weights() -> None:
    files = [p for p in EXAMPLE.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".safetensors", ".pt", ".pth", ".ckpt", ".onnx")]
    assert sum(p.stat().st_size for p in files) <= SIZE_LIMIT
    for name in ("report.md", "report.html", "report.json", "run.json", "README.md"):
        assert (EXAMPLE / name).is_file(), name


def test_the_report_regenerates_with_the_same_claims_and_targets(tmp_path: Path) -> None:
    copy = tmp_path / "fashion-mnist"
    shutil.copytree(EXAMPLE, copy)
    committed = json.loads((EXAMPLE / "report.json").read_text())
    write_report(copy, targets=load_config(preset="fashion-mnist").targets)
    regenerated = json.loads((copy / "report.json").read_text())
    assert [(c["statement"], c["verdict"]) for c in regenerated["claims"]] == \
        [(c["statement"], c["verdict"]) for c in committed["claims"]]
    assert regenerated["targets"] == committed["targets"] and len(committed["targets"]) == 6
    assert "Table T.1" in (EXAMPLE / "report.md").read_text()
