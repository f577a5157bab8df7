"""``shallowcert certify``: robust error bound at eps and, optionally, per-point certified radii.

Writes ``certify.json`` (summary), and with ``--radius`` also ``radii.csv`` and
``certification_area.png`` into ``--out`` (the directory appears whole or not at all).
``--radius --exact`` adds each point's exact radius bracket (:mod:`shallowcert.verify.exact`,
``--exact-time-limit`` seconds per point, starting from the ``--method`` certified radius in
float64) next to the certified radius in ``certify.json``: ``lower``/``upper``/``settled`` per
point, the mean gaps to the certified radius and the count of unsettled points.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from shallowcert import atomic
from shallowcert.checks import non_negative_float, positive_float
from shallowcert.certify import (
    SEARCHES,
    adversarial_distance,
    certification_area,
    certified_radius,
    certify_points,
    parse_dtype,
    plot_certification_area,
)
from shallowcert.certify.table import write_radii_csv
from shallowcert.certify.verdict import check_method
from shallowcert.cli.common import (
    add_dataset_arguments,
    add_device_argument,
    add_model_argument,
    check_compatible,
    dataset_from_args,
    device_from_args,
    model_from_args,
    positive_int,
    print_json,
)
from shallowcert.errors import UserError
from shallowcert.verify.exact import ExactSettings, exact_radius


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("certify", help="robust error bound at eps and per-point certified radii")
    add_model_argument(p)
    add_dataset_arguments(p)
    p.add_argument("--eps", type=float, required=True, help="L-inf radius in input units (inputs in [0, 1])")
    p.add_argument("--method", default="dual", help="bound method: ibp, dual, crown, alpha-crown, crown-ibp")
    p.add_argument("--radius", action="store_true", help="also search each point's certified radius")
    p.add_argument("--radius-search", default="bisect", help="bisect (default) or newton (the thesis' method)")
    p.add_argument("--attack-radius", action="store_true",
                   help="with --radius: also the distance of the closest adversarial example PGD finds")
    p.add_argument("--exact", action="store_true",
                   help="with --radius: also each point's exact radius (complete verifier, bisection)")
    p.add_argument("--exact-time-limit", type=float, default=30.0, metavar="S",
                   help="with --exact: seconds per point (default 30); unsettled points are counted, not guessed")
    p.add_argument("--exact-rtol", type=float, default=0.01, help="with --exact: relative gap that settles a point")
    p.add_argument("--limit", type=positive_int, default=None, metavar="N", help="only the first N test points")
    p.add_argument("--domain-clip", action="store_true", help="intersect the balls with the data domain [0, 1]")
    p.add_argument("--dtype", default="float32", help="float32 or float64")
    p.add_argument("--batch-size", type=positive_int, default=256)
    p.add_argument("--out", required=True, help="output directory")
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    device = device_from_args(args)
    eps = non_negative_float("--eps", args.eps)
    check_method(args.method)
    dtype = parse_dtype(args.dtype)
    if args.radius_search not in SEARCHES:
        raise UserError(f"unknown --radius-search '{args.radius_search}' (choose from {', '.join(SEARCHES)})")
    if args.attack_radius and not args.radius:
        raise UserError("--attack-radius needs --radius")
    if args.exact and not args.radius:
        raise UserError("--exact needs --radius")
    loaded = model_from_args(args, device=device)
    dataset = dataset_from_args(args)
    check_compatible(loaded, dataset)
    split = dataset.test.head(args.limit)
    x, y = split.floats(), split.labels
    domain = (0.0, 1.0) if args.domain_clip else None
    start = time.perf_counter()
    verdict = certify_points(loaded.model, x, y, eps, method=args.method, domain=domain, dtype=dtype,
                             batch_size=args.batch_size)
    summary: dict[str, object] = {"model": str(args.model), "dataset": dataset.name, **verdict.summary(),
                                  "seconds": round(time.perf_counter() - start, 3)}
    radius: dict[str, Any] | None = None
    with atomic.atomic_directory(args.out) as out:
        if args.radius:
            radius = summary["radius"] = _radius_outputs(loaded.model, x, y, args, domain, dtype, out)
        atomic.write_json(out / "certify.json", summary)
    exact = radius.get("exact") if radius else None
    print_json({k: summary[k] for k in ("n", "eps", "method", "dtype", "clean_accuracy", "certified_accuracy",
                                         "robust_error_bound")}
               | ({"mean_radius": radius["mean_radius"]} if radius else {})
               | ({f"exact_{k}": exact[k] for k in ("settled", "unsettled", "mean_lower", "mean_upper",
                                                    "mean_gap_lower_minus_certified",
                                                    "mean_gap_upper_minus_certified")} if exact else {}))
    return 0


def _radius_outputs(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, args: argparse.Namespace,
                    domain: tuple[float, float] | None, dtype: torch.dtype, out: Path) -> dict[str, Any]:
    """Search the radii, write ``radii.csv`` and the area figure, return the JSON summary."""
    result = certified_radius(model, x, labels=y, method=args.method, domain=domain, dtype=dtype,
                              search=args.radius_search, batch_size=args.batch_size)
    assert result.correct is not None  # the labels were given
    area = certification_area(result.radius, result.correct)
    stats: dict[str, Any] = {**result.summary(), **area.summary()}
    distance = None
    if args.attack_radius:
        start = time.perf_counter()
        distance = adversarial_distance(model, x, result.predicted, lower=result.radius.double())
        found = torch.isfinite(distance)
        mean = float(distance[found].mean()) if bool(found.any()) else None
        stats["attack"] = {"found": int(found.sum()), "mean_distance": mean,
                           "seconds": round(time.perf_counter() - start, 3)}
    if args.exact:
        settings = ExactSettings(positive_float("--exact-time-limit", args.exact_time_limit),
                                 rtol=positive_float("--exact-rtol", args.exact_rtol), certified_by=args.method,
                                 domain=domain)
        exact = exact_radius(model, x, result.predicted, settings)
        points = exact.per_point()
        stats["exact"] = {**exact.summary(), **{k: points[k] for k in ("lower", "upper", "certified")},
                          "settled_points": points["settled"]}
    write_radii_csv(out / "radii.csv", result, y, attack_distance=distance)
    plot_certification_area(area, out / "certification_area.png",
                            title=f"{args.method} ({result.dtype}): mean radius {area.mean_radius:.4g}")
    return stats
