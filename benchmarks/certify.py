"""Benchmark: certified radii and robust-training time, ours vs convex_adversarial.

Same inputs, one run, 2 threads, ``wong-small`` on Fashion-MNIST (trained for
``--train-epochs`` here when no ``--model`` is given):

1. certified radius of the predicted class for the first ``--points`` test points (all 10,000
   by default) with our bracketing search (``dual-exact`` bounds, the ones convex_adversarial
   computes, so that its re-verification compares like with like; float32, shortcut, known ReLU states
   below a failed radius) — mean radius, seconds, evaluations; then every radius is
   re-evaluated freshly by our engine, the first ``--baseline-points`` by
   convex_adversarial, counting failures, and the first ``--pgd-points`` attacked by PGD at
   their own radius (none may break);
2. the thesis' Newton method on convex_adversarial's ``DualNetwork`` (scalar eps, one point
   at a time, derivative by forward difference) on the first ``--baseline-points`` of the
   same points — mean radius, seconds, and how many of its radii fail re-verification;
3. robust training: seconds per batch of Wong & Kolter's robust loss (forward, backward,
   Adam step) for ours and ``convex_adversarial.robust_loss(net, eps, X, y)`` on the same
   ``--robust-batches`` batches, extrapolated to one epoch of the training split.

JSON goes to ``benchmarks/results/certify.json``; a Markdown table is printed.
Run: ``python benchmarks/certify.py [--model DIR] [--points 1000]``.
"""

from __future__ import annotations

import argparse
import copy
import logging
import platform
import time
from pathlib import Path

import torch
from convex_adversarial import DualNetwork
from convex_adversarial import robust_loss as ca_robust_loss

from shallowcert import atomic
from shallowcert.attacks import PGD
from shallowcert.certify import SearchSettings, certified_radius
from shallowcert.certify.verdict import margin_lower_bounds
from shallowcert.data import load_dataset
from shallowcert.models import load_model, save_model
from shallowcert.robust import robust_loss
from shallowcert.training import FitConfig, accuracy, train_classifier

RESULTS = Path(__file__).resolve().parent / "results" / "certify.json"
METHOD = "dual-exact"  # convex_adversarial's dual: its re-verification then tests our search, not our shortcuts


def ca_margin(net: torch.nn.Module, x: torch.Tensor, label: int, eps: float, classes: int) -> float:
    """convex_adversarial's smallest lower bound of f_label - f_j (j != label) at scalar ``eps``."""
    eye = torch.eye(classes)
    c = (eye[label].unsqueeze(0) - eye)[[j for j in range(classes) if j != label]].unsqueeze(0)
    with torch.no_grad():
        return float(DualNetwork(net, x, eps, bounded_input=False)(c).min())


def newton_baseline(net: torch.nn.Module, x: torch.Tensor, labels: torch.Tensor, classes: int,
                    settings: SearchSettings, *, step: float = 1e-5) -> dict[str, object]:
    """The thesis' Newton iteration on eps per point with DualNetwork, then re-verification."""
    returned, verified_radius, failures, evaluations = [], [], 0, 0
    for i in range(len(x)):
        point, label = x[i:i + 1], int(labels[i])
        eps, best = 0.0, 0.0
        for _ in range(settings.max_rounds):
            value = ca_margin(net, point, label, max(eps, 1e-12), classes)
            slope = (ca_margin(net, point, label, eps + step, classes) - value) / step
            evaluations += 2
            if value > 0:
                best = max(best, eps)
            if not slope < 0:
                break
            new = min(max(eps - value / slope, 0.0), settings.max_radius)
            done = abs(new - eps) <= settings.atol + settings.rtol * eps
            eps = new
            if done:
                break
        holds = ca_margin(net, point, label, max(eps, 1e-12), classes) > 0
        evaluations += 1
        failures += int(not holds)
        returned.append(eps)
        verified_radius.append(eps if holds else best)
    return {"returned": returned, "radius": verified_radius, "failures": failures, "evaluations": evaluations}


def fresh_reverification_failures(model: torch.nn.Module, x: torch.Tensor, result, classes: int) -> int:
    """How many radii > 0 fail a fresh dual evaluation at that radius (no known ReLU states)."""
    held = result.radius > 0
    with torch.no_grad():
        bounds = margin_lower_bounds(model, x[held], result.predicted[held], result.radius[held], method=METHOD,
                                     domain=result.domain, classes=classes)
    return int((bounds.min(dim=1).values <= 0).sum())


def pgd_breaks(model: torch.nn.Module, x: torch.Tensor, predicted: torch.Tensor, radius: torch.Tensor,
               ) -> tuple[int, int]:
    """(points with radius > 0, how many of them PGD-100 with 3 random restarts breaks at
    their own radius): a certified radius must never be broken."""
    held = radius > 0
    attack = PGD(steps=100, relative_step=0.1, random_start=True, restarts=3, seed=1)
    result = attack(model, x[held], predicted[held], eps=radius[held].float(), early_stop=True)
    return int(held.sum()), int(result.success.sum())


def robust_epoch_seconds(model: torch.nn.Module, batches: list[tuple[torch.Tensor, torch.Tensor]], eps: float,
                         loss_of) -> float:
    """Seconds for forward + backward + Adam step of ``loss_of(net, x, y)`` over ``batches``."""
    net = copy.deepcopy(model).train()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    start = time.perf_counter()
    for x, y in batches:
        loss = loss_of(net, x, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a wong-small model directory (trained here if absent)")
    parser.add_argument("--train-epochs", type=int, default=1)
    parser.add_argument("--points", type=int, default=10000)
    parser.add_argument("--baseline-points", type=int, default=200)
    parser.add_argument("--pgd-points", type=int, default=1000, help="radii attacked by PGD at their own value")
    parser.add_argument("--robust-eps", type=float, default=0.1)
    parser.add_argument("--robust-batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    dataset = load_dataset("fashion-mnist")
    if args.model:
        model = load_model(args.model).model
    else:
        model, _ = train_classifier("wong-small", dataset, FitConfig(epochs=args.train_epochs, seed=0))
        save_model(Path(args.out).parent / "wong-small-fmnist", model, spec="wong-small",
                   input_shape=dataset.input_shape, classes=dataset.classes)
    model.eval()
    test = dataset.test.head(args.points)
    x, y = test.floats(), test.labels
    settings = SearchSettings()

    ours = certified_radius(model, x, labels=y, method=METHOD, dtype=torch.float32, settings=settings)
    m = min(args.baseline_points, args.points)
    fresh_failures = fresh_reverification_failures(model, x, ours, dataset.classes)
    pgd_points, pgd_broken = pgd_breaks(model, x[:args.pgd_points], ours.predicted[:args.pgd_points],
                                        ours.radius[:args.pgd_points])
    ca_failures = sum(ca_margin(model, x[i:i + 1], int(ours.predicted[i]), float(ours.radius[i]), dataset.classes)
                      <= 0 for i in range(m) if ours.radius[i] > 0)
    start = time.perf_counter()
    baseline = newton_baseline(model, x[:m], ours.predicted[:m], dataset.classes, settings)
    baseline_seconds = time.perf_counter() - start
    ours_first = ours.radius[:m].double()

    generator = torch.Generator().manual_seed(0)
    batches = list(dataset.train.batches(args.batch_size, shuffle=True, generator=generator))[:args.robust_batches]
    ours_robust = robust_epoch_seconds(model, batches, args.robust_eps,
                                       lambda net, xb, yb: robust_loss(net, xb, yb, args.robust_eps).loss)
    ca_robust = robust_epoch_seconds(model, batches, args.robust_eps,
                                     lambda net, xb, yb: ca_robust_loss(net, args.robust_eps, xb, yb)[0])
    per_epoch = len(dataset.train) / (len(batches) * args.batch_size)

    result = {
        "machine": {"threads": torch.get_num_threads(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "model": {"spec": "wong-small", "dir": args.model or "trained here", "train_epochs": args.train_epochs
                  if not args.model else None, "test_accuracy_on_points": accuracy(model, test)},
        "tolerance": {"rtol": settings.rtol, "atol": settings.atol},
        "radius_ours": {**ours.summary(), "seconds_per_point": ours.seconds / args.points,
                        "fresh_reverification_failures": fresh_failures,
                        "pgd_points": pgd_points, "pgd_broken_at_radius": pgd_broken,
                        "convex_adversarial_reverification_failures_first_baseline_points": ca_failures,
                        "extrapolated_10000_seconds": ours.seconds / args.points * 10000,
                        "mean_radius_first_baseline_points": float(ours_first.mean())},
        "radius_newton_convex_adversarial": {
            "n": m, "seconds": baseline_seconds, "seconds_per_point": baseline_seconds / m,
            "mean_radius_verified": sum(baseline["radius"]) / m,
            "mean_radius_returned": sum(baseline["returned"]) / m,
            "failures": baseline["failures"], "evaluations_per_point": baseline["evaluations"] / m,
            "extrapolated_10000_seconds": baseline_seconds / m * 10000},
        "robust_training": {
            "eps": args.robust_eps, "batch_size": args.batch_size, "batches": len(batches),
            "ours_seconds": ours_robust, "convex_adversarial_seconds": ca_robust,
            "ours_epoch_seconds_extrapolated": ours_robust * per_epoch,
            "convex_adversarial_epoch_seconds_extrapolated": ca_robust * per_epoch},
    }
    atomic.write_json(args.out, result)
    r, b, t = result["radius_ours"], result["radius_newton_convex_adversarial"], result["robust_training"]
    print("| | ours (bisect + shortcut) | Newton on convex_adversarial |")
    print("| --- | --- | --- |")
    print(f"| points | {r['n']} | {b['n']} |")
    print(f"| mean certified radius (same first {m} points) | {r['mean_radius_first_baseline_points']:.5f} | "
          f"{b['mean_radius_verified']:.5f} (returned, unverified: {b['mean_radius_returned']:.5f}) |")
    print(f"| mean certified radius (all {r['n']}) | {r['mean_radius']:.5f} | |")
    print(f"| seconds per point | {r['seconds_per_point']:.4f} | {b['seconds_per_point']:.4f} |")
    print(f"| bound evaluations per point | {r['evaluations_per_point']:.2f} | {b['evaluations_per_point']:.2f} |")
    print(f"| radii failing re-verification by convex_adversarial (first {m}) | {ca_failures} | "
          f"{b['failures']} of {b['n']} |")
    print(f"| radii failing a fresh re-evaluation of ours (all {r['n']}) | {fresh_failures} | |")
    print(f"| points broken by PGD-100 (3 restarts) at their certified radius | {pgd_broken} of {pgd_points} | |")
    print(f"| seconds for all {r['n']} points | {r['seconds']:.0f} | |")
    print(f"| 10,000 points (extrapolated, s) | {r['extrapolated_10000_seconds']:.0f} | "
          f"{b['extrapolated_10000_seconds']:.0f} |")
    print(f"| robust training, {t['batches']} batches of {t['batch_size']} (s) | {t['ours_seconds']:.2f} | "
          f"{t['convex_adversarial_seconds']:.2f} |")
    print(f"| robust training epoch (extrapolated, s) | {t['ours_epoch_seconds_extrapolated']:.0f} | "
          f"{t['convex_adversarial_epoch_seconds_extrapolated']:.0f} |")


if __name__ == "__main__":
    main()
