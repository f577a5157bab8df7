"""Benchmark: alpha-CROWN certified radii in float64, slopes warm-started across the search or cold.

One model directory, its first ``--points`` Fashion-MNIST test points, ``--threads`` threads,
the default search tolerances. Three searches on the same points, in one run:

* ``crown``: the reference radius (no slopes to optimise);
* ``alpha-crown cold``: every evaluation starts at CROWN's slopes and takes 20 Adam steps
  (``SearchSettings(warm_alpha_steps=None)``);
* ``alpha-crown warm``: a point's first evaluation (at radius 0) as cold, every later one
  starts from the slopes its previous one returned and takes ``--warm-steps`` steps.

For each: seconds, mean radius, bound evaluations per point; for the warm search also how
many points its radius is below / above the cold one's (by more than the search tolerance),
and PGD-100 at every warm radius (``broken`` must be 0). JSON goes to
``benchmarks/results/alpha-radius.json``; a Markdown table is printed.
Run: ``python benchmarks/alpha_radius.py --model DIR [--points 300] [--warm-steps 5]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import torch

from shallowcert import atomic
from shallowcert.attacks import PGD
from shallowcert.certify import SearchSettings, certified_radius
from shallowcert.data import load_dataset
from shallowcert.models import load_model

RESULTS = Path(__file__).resolve().parent / "results" / "alpha-radius.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model directory (e.g. a study's teacher-robust)")
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--warm-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--domain-clip", action="store_true", help="intersect the balls with [0, 1]")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model).model.eval()
    test = load_dataset("fashion-mnist").test.head(args.points)
    x, y = test.floats(), test.labels
    domain = (0.0, 1.0) if args.domain_clip else None
    runs = {"crown": ("crown", SearchSettings()),
            "alpha-crown cold": ("alpha-crown", SearchSettings(warm_alpha_steps=None)),
            "alpha-crown warm": ("alpha-crown", SearchSettings(warm_alpha_steps=args.warm_steps))}
    found = {}
    for name, (method, settings) in runs.items():
        result = certified_radius(model, x, labels=y, method=method, domain=domain, dtype=torch.float64,
                                  settings=settings)
        found[name] = result
        print(f"{time.strftime('%H:%M:%S')} {name}: {result.seconds:.1f} s, mean radius "
              f"{float(result.radius.mean()):.5f}", flush=True)
    cold, warm = found["alpha-crown cold"].radius, found["alpha-crown warm"].radius
    tolerance = SearchSettings().rtol * torch.maximum(cold, warm) + SearchSettings().atol
    held = warm > 0
    attack = PGD(steps=100, relative_step=0.1, random_start=True, restarts=2, seed=1)
    broken = attack(model.float(), x[held], found["alpha-crown warm"].predicted[held], eps=warm[held].float(),
                    early_stop=True).success
    result = {
        "machine": {"threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
                    "load_average": os.getloadavg()},
        "model": args.model, "points": args.points, "dtype": "float64", "domain": domain,
        "warm_steps": args.warm_steps,
        "runs": {name: {"seconds": r.seconds, "mean_radius": float(r.radius.mean()),
                        "evaluations_per_point": float(r.evaluations.double().mean())} for name, r in found.items()},
        "warm_vs_cold": {"below": int((warm < cold - tolerance).sum()), "above": int((warm > cold + tolerance).sum()),
                         "speed_ratio": found["alpha-crown cold"].seconds / found["alpha-crown warm"].seconds},
        "pgd_at_warm_radius": {"points": int(held.sum()), "broken": int(broken.sum())},
    }
    atomic.write_json(args.out, result)
    print("| search | seconds | mean radius | evaluations / point |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in result["runs"].items():
        print(f"| {name} | {r['seconds']:.1f} | {r['mean_radius']:.5f} | {r['evaluations_per_point']:.2f} |")
    w = result["warm_vs_cold"]
    print(f"warm radius below cold on {w['below']}, above on {w['above']} of {args.points}; "
          f"cold/warm time {w['speed_ratio']:.2f}; PGD broke {result['pgd_at_warm_radius']['broken']} of "
          f"{result['pgd_at_warm_radius']['points']} warm radii")


if __name__ == "__main__":
    main()
