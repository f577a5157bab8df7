"""The certification area on hand-checkable radii, and its figure."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from shallowcert.certify import certification_area, plot_certification_area


def test_area_sorts_radii_and_runs_the_accuracy() -> None:
    radii = torch.tensor([0.3, 0.1, 0.2, 0.0])
    correct = torch.tensor([True, False, True, False])
    area = certification_area(radii, correct)
    assert area.radii.tolist() == pytest.approx([0.3, 0.2, 0.1, 0.0])
    assert area.correct.tolist() == [True, True, False, False]
    assert area.running_accuracy.tolist() == pytest.approx([1.0, 1.0, 2 / 3, 0.5])
    assert area.mean_radius == pytest.approx(0.15)
    assert area.mean_true_label_radius == pytest.approx((0.3 + 0.2) / 4)  # misclassified count as 0


def test_area_rejects_mismatched_inputs() -> None:
    with pytest.raises(ValueError):
        certification_area(torch.zeros(3), torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError):
        certification_area(torch.zeros(0), torch.ones(0, dtype=torch.bool))


def test_area_figure_is_a_png(tmp_path: Path) -> None:
    area = certification_area(torch.rand(50), torch.rand(50) > 0.3)
    path = tmp_path / "area.png"
    plot_certification_area(area, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name != "area.png"]  # no temporary file left
