"""Speed and agreement of the bounds engine against convex_adversarial on a wong-small.

    python benchmarks/bounds.py [--model DIR | --spec SPEC] [--points N] [--eps E] [--repeats R] [--output JSON]

Without ``--model`` a ``--spec`` network (default wong-small; e.g. cert-teacher) is trained
on Fashion-MNIST for one epoch (cross-entropy).
All runs use 2 threads, float64, the first N test points and one radius ``eps`` (input
units); each time is the best of ``--repeats`` runs. Bounds are on the margin spec
(true class minus every other class); ``dual-exact`` is compared with convex_adversarial (it must match); ``dual`` (interval-proved
stable neurons fixed) is counted as higher or lower per margin. ``alpha-crown`` runs with its defaults (20 steps, intermediate
slopes optimised) and as the final-only variant (``alpha_intermediate=False``). Prints a Markdown table and writes
``--output`` (default ``benchmarks/results/bounds.json``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch
from convex_adversarial import DualNetwork

from shallowcert.atomic import write_json
from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.data import load_dataset, to_float
from shallowcert.models import load_model
from shallowcert.training import FitConfig, train_classifier

RESULTS = Path(__file__).resolve().parent / "results" / "bounds.json"
OUR_METHODS = ("dual", "dual-exact", "crown", "alpha-crown", "ibp")
REFERENCE_CHUNK = 100
ALPHA_VARIANTS = {"alpha-crown": {}, "alpha-crown final-only": {"alpha_intermediate": False}}  # method -> options


def _best_time(run: Callable[[], torch.Tensor], repeats: int) -> tuple[float, torch.Tensor]:
    best, value = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        value = run()
        best = min(best, time.perf_counter() - start)
    return best, value


def _max_relative(ours: torch.Tensor, reference: torch.Tensor) -> float:
    return float(((ours - reference).abs() / reference.abs().clamp(min=1e-12)).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: train --spec for one epoch)")
    parser.add_argument("--spec", default="wong-small", help="architecture trained when --model is not given")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    parser.add_argument("--points", type=int, default=50)
    parser.add_argument("--eps", type=float, default=0.02)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)

    dataset = load_dataset("fashion-mnist")
    if args.model:
        model = load_model(args.model).model
        source = args.model
    else:
        model, _ = train_classifier(args.spec, dataset, FitConfig(epochs=1, seed=0))
        source = f"{args.spec}, 1 epoch of Fashion-MNIST"
    model = model.eval().double()
    test = dataset.test.head(args.points)
    x = to_float(test.images).double()
    spec = margin_spec(test.labels, dataset.classes).double()
    eps = torch.full((len(test),), args.eps, dtype=torch.float64)

    def dual_network(bounded_input: bool) -> torch.Tensor:
        """convex_adversarial's bounds, :data:`REFERENCE_CHUNK` points per DualNetwork (it holds
        every point's dual variables at once: 1,000 wong-small points at once exceed 24 GiB)."""
        return torch.cat([DualNetwork(model, x[i:i + REFERENCE_CHUNK], args.eps, bounded_input=bounded_input)(
            spec[i:i + REFERENCE_CHUNK]) for i in range(0, len(x), REFERENCE_CHUNK)])

    rows = []
    with torch.no_grad():
        reference_time, reference = _best_time(lambda: dual_network(False), args.repeats)
        bounded_reference = dual_network(True)
        rows.append({"method": "convex_adversarial DualNetwork", "ms_per_point": 1000 * reference_time / len(test),
                     "certified": float((reference > 0).all(1).float().mean()), "mean_bound": float(reference.mean())})
        for name in (*OUR_METHODS, "alpha-crown final-only"):
            method, options = name.split()[0], ALPHA_VARIANTS.get(name, {})
            seconds, bound = _best_time(
                lambda method=method, options=options: lower_bounds(model, InputSet(x, eps, domain=None), spec,
                                                                    method=method, **options), args.repeats)
            rows.append({"method": f"shallowcert {name}", "ms_per_point": 1000 * seconds / len(test),
                         "certified": float((bound > 0).all(1).float().mean()),
                         "mean_bound": float(bound.mean())})
            if method == "dual":
                dual_time, dual_unbounded = seconds, bound
            if method == "dual-exact":
                exact_unbounded = bound
        exact_bounded = lower_bounds(model, InputSet(x, eps), spec, method="dual-exact")
    result = {
        "model": source, "points": len(test), "eps": args.eps, "dtype": "float64", "threads": 2,
        "rows": rows,
        "speedup_dual_vs_convex_adversarial": reference_time / dual_time,
        "max_relative_difference_dual_exact": _max_relative(exact_unbounded, reference),
        "max_relative_difference_dual_exact_bounded_input": _max_relative(exact_bounded, bounded_reference),
        "dual_margins_higher_than_convex_adversarial": int((dual_unbounded > reference + 1e-9).sum()),
        "dual_margins_lower_than_convex_adversarial": int((dual_unbounded < reference - 1e-9).sum()),
        "dual_largest_difference": float((dual_unbounded - reference).abs().max()),
    }
    write_json(args.output, result)
    print(f"{source}; {len(test)} points, eps={args.eps}, float64, 2 threads, no domain clipping\n")
    print("| method | ms / point | certified | mean bound |\n| --- | ---: | ---: | ---: |")
    for row in rows:
        mean = row.get("mean_bound", float("nan"))
        print(f"| {row['method']} | {row['ms_per_point']:.2f} | {row['certified']:.2%} | {mean:.4f} |")
    print(f"\nspeed-up dual vs convex_adversarial: {result['speedup_dual_vs_convex_adversarial']:.1f}x; "
          f"dual-exact's max relative difference {result['max_relative_difference_dual_exact']:.1e} "
          f"(bounded input: {result['max_relative_difference_dual_exact_bounded_input']:.1e}); dual higher on "
          f"{result['dual_margins_higher_than_convex_adversarial']} margins, lower on "
          f"{result['dual_margins_lower_than_convex_adversarial']} (largest difference "
          f"{result['dual_largest_difference']:.2e})")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
