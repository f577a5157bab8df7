"""Benchmark: alpha-CROWN certified radii in float64: seeded by CROWN's search, warm-started or cold.

One model directory, its first ``--points`` Fashion-MNIST test points, ``--threads`` threads,
the default search tolerances. The searches of ``--searches`` on the same points, in one run:

* ``crown``: the reference radius (no slopes to optimise);
* ``alpha-crown cold``: a whole search from radius 0, every evaluation starting at CROWN's
  slopes with 20 Adam steps (``SearchSettings(warm_alpha_steps=None, crown_seed=False)``);
* ``alpha-crown warm``: a whole search, a point's first evaluation as cold, every later one
  from the slopes its previous one returned with ``--warm-steps`` steps (``crown_seed=False``);
* ``alpha-crown seeded`` (the default search): CROWN's search, then alpha-CROWN from CROWN's
  radius, warm-started as above.

For each: seconds, mean radius, bound evaluations per point (CROWN's included for the seeded
search); for every alpha-CROWN search but the reference (the cold one, or the first run)
how many points its radius is below / above the reference's (by more than the search
tolerance); PGD-100 at every radius of the default search (``broken`` must be 0). JSON goes
to ``benchmarks/results/alpha-radius.json``; a Markdown table is printed.
Run: ``python benchmarks/alpha_radius.py --model DIR [--points 300] [--searches crown,seeded,warm]``.
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
SEARCHES = ("crown", "seeded", "warm", "cold")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a model directory (e.g. a study's teacher-robust)")
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--warm-steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--domain-clip", action="store_true", help="intersect the balls with [0, 1]")
    parser.add_argument("--searches", default="crown,seeded,warm,cold",
                        help="comma-separated, from crown, seeded, warm, cold (cold takes about 3x warm)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    wanted = args.searches.split(",")
    unknown = sorted(set(wanted) - set(SEARCHES))
    if unknown:
        parser.error(f"unknown search(es) {', '.join(unknown)}: choose from {', '.join(SEARCHES)}")
    torch.set_num_threads(args.threads)
    model = load_model(args.model).model.eval()
    test = load_dataset("fashion-mnist").test.head(args.points)
    x, y = test.floats(), test.labels
    domain = (0.0, 1.0) if args.domain_clip else None
    searches = {"crown": ("crown", SearchSettings()),
                "alpha-crown seeded": ("alpha-crown", SearchSettings(warm_alpha_steps=args.warm_steps)),
                "alpha-crown warm": ("alpha-crown", SearchSettings(warm_alpha_steps=args.warm_steps, crown_seed=False)),
                "alpha-crown cold": ("alpha-crown", SearchSettings(warm_alpha_steps=None, crown_seed=False))}
    chosen = [name for name in searches if name.split()[-1] in wanted]
    found = {}
    for name in chosen:
        method, settings = searches[name]
        result = certified_radius(model, x, labels=y, method=method, domain=domain, dtype=torch.float64,
                                  settings=settings)
        found[name] = result
        print(f"{time.strftime('%H:%M:%S')} {name}: {result.seconds:.1f} s, mean radius "
              f"{float(result.radius.mean()):.5f}", flush=True)
    alphas = [name for name in reversed(chosen) if name != "crown"]  # the cold search first, when run
    compared = {}
    for name in alphas[1:]:
        reference, radius = found[alphas[0]].radius, found[name].radius
        tolerance = SearchSettings().rtol * torch.maximum(reference, radius) + SearchSettings().atol
        compared[name] = {"reference": alphas[0], "below": int((radius < reference - tolerance).sum()),
                          "above": int((radius > reference + tolerance).sum()),
                          "speed_ratio": found[alphas[0]].seconds / found[name].seconds}
    default_name = "alpha-crown seeded" if "alpha-crown seeded" in found else (alphas or chosen)[0]
    default = found[default_name]
    held = default.radius > 0
    attack = PGD(steps=100, relative_step=0.1, random_start=True, restarts=2, seed=1)
    broken = attack(model.float(), x[held], default.predicted[held], eps=default.radius[held].float(),
                    early_stop=True).success
    result = {
        "machine": {"threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
                    "load_average": os.getloadavg()},
        "model": args.model, "points": args.points, "dtype": "float64", "domain": domain,
        "warm_steps": args.warm_steps,
        "runs": {name: {"seconds": r.seconds, "mean_radius": float(r.radius.mean()),
                        "evaluations_per_point": float(r.evaluations.double().mean())} for name, r in found.items()},
        "against_reference": compared,
        "pgd_at_default_radius": {"search": default_name, "points": int(held.sum()),
                                  "broken": int(broken.sum())},
    }
    atomic.write_json(args.out, result)
    print("| search | seconds | mean radius | evaluations / point |")
    print("| --- | ---: | ---: | ---: |")
    for name, r in result["runs"].items():
        print(f"| {name} | {r['seconds']:.1f} | {r['mean_radius']:.5f} | {r['evaluations_per_point']:.2f} |")
    for name, c in compared.items():
        print(f"{name}: radius below {c['reference']} on {c['below']}, above on {c['above']} of {args.points}; "
              f"{c['reference']} / {name} time {c['speed_ratio']:.2f}")
    pgd = result["pgd_at_default_radius"]
    print(f"PGD broke {pgd['broken']} of {pgd['points']} radii of {pgd['search']}")


if __name__ == "__main__":
    main()
