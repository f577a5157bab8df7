"""Certify your own ``nn.Sequential``: certified accuracy at epsilon, per-point certified
radii and the certification-area figure, with CROWN bounds in float64.

    python examples/own_model.py --out area.png [--eps 0.05] [--points 100]

The model here is a stand-in (a small ReLU net trained for one short epoch); put yours in
its place. Supported layers: Linear, Conv2d, ReLU, Flatten, Normalize, BatchNorm (eval),
AvgPool2d, Dropout (eval), Identity; any other layer is refused with a message naming it.
Radii are L-inf, in input units (pixels in [0, 1]), balls clipped to [0, 1].
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from shallowcert.certify import certification_area, certified_radius, certify_points, plot_certification_area
from shallowcert.data import Split, load_dataset
from shallowcert.errors import UserError
from shallowcert.training import FitConfig, fit


def certify_own_model(model: nn.Sequential, test: Split, eps: float, figure: Path) -> dict[str, float]:
    """The quick start: certify ``test`` at ``eps``, search each point's radius, plot the area."""
    x, y, box = test.floats(), test.labels, (0.0, 1.0)
    verdict = certify_points(model, x, y, eps, method="crown", domain=box, dtype=torch.float64)
    radii = certified_radius(model, x, labels=y, method="crown", domain=box, dtype=torch.float64)
    assert radii.correct is not None  # the labels were given
    area = certification_area(radii.radius, radii.correct)
    plot_certification_area(area, figure, title=f"certification area (mean radius {area.mean_radius:.4f})")
    return {"certified_accuracy": verdict.certified_accuracy, "mean_radius": area.mean_radius}


def stand_in_model(train: Split) -> nn.Sequential:
    """A small ReLU network, trained for one epoch on ``train`` (replace it with yours)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 14 * 14, 64), nn.ReLU(), nn.Linear(64, 10))
    fit(model, train, config=FitConfig(epochs=1, batch_size=64), validate=lambda m: 0.0)
    return model


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("certification-area.png"), help="the figure (PNG)")
    parser.add_argument("--eps", type=float, default=0.05, help="L-inf radius of the certificate (input units)")
    parser.add_argument("--points", type=int, default=100, help="the first N Fashion-MNIST test points")
    args = parser.parse_args()
    try:
        dataset = load_dataset("fashion-mnist")
        model = stand_in_model(dataset.train.head(5000))
        result = certify_own_model(model, dataset.test.head(args.points), args.eps, args.out)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"certified accuracy at eps={args.eps:g}: {result['certified_accuracy']:.3f}; mean certified radius "
          f"{result['mean_radius']:.4f}; figure: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
