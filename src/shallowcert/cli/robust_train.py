"""``shallowcert robust-train``: certified training (Wong & Kolter) saved as a model directory.

``metrics.json`` records the clean error, the PGD error and the robust error bound at the
training radius on the test split (its first ``--limit-eval`` points when given).
"""

from __future__ import annotations

import argparse
import dataclasses

from shallowcert.checks import non_negative_float
from shallowcert.cli.common import (add_dataset_arguments, add_device_argument, dataset_from_args, device_from_args,
                                    positive_int, print_json)
from shallowcert.cli.train import add_fit_arguments, fit_config_from_args
from shallowcert.models import save_model
from shallowcert.models.spec import expand
from shallowcert.robust import (DEFAULT_PROJECTIONS, CrownIbpSchedule, EpsilonSchedule, certificate_method,
                                certified_accuracy_on, check_train_method, robust_fit, robustness_metrics)
from shallowcert.training import build_seeded


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("robust-train", help="certified training with the robust loss of Wong & Kolter")
    add_dataset_arguments(p)
    p.add_argument("--model", required=True, metavar="SPEC", help="architecture spec, e.g. wong-small")
    p.add_argument("--eps", type=float, required=True, help="L-inf training radius in input units")
    p.add_argument("--method", default="dual", help="training method: dual (default), dual-projected, crown-ibp (with "
                   "the ramps of Zhang et al. over --warmup-epochs), ibp, crown, ...")
    p.add_argument("--projections", type=positive_int, default=DEFAULT_PROJECTIONS,
                   help="Cauchy projections of dual-projected (default %(default)s)")
    p.add_argument("--out", required=True, help="model directory to write")
    add_fit_arguments(p, epochs=20)
    p.add_argument("--warmup-epochs", type=positive_int, default=10, help="epochs of the linear eps warm-up")
    p.add_argument("--start-eps", type=float, default=0.001, help="radius of the first epoch (crown-ibp starts at 0)")
    p.add_argument("--domain-clip", action="store_true", help="intersect the balls with the data domain [0, 1]")
    p.add_argument("--limit-train", type=positive_int, default=None, metavar="N", help="first N training points")
    p.add_argument("--limit-val", type=positive_int, default=500, metavar="N",
                   help="validation points whose certified accuracy picks the epoch kept")
    p.add_argument("--limit-eval", type=positive_int, default=None, metavar="N", help="first N test points")
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    device = device_from_args(args)
    expand(args.model)  # reject a bad spec before loading data
    eps = non_negative_float("--eps", args.eps)
    check_train_method(args.method)
    schedule = (CrownIbpSchedule(eps, ramp_epochs=args.warmup_epochs) if args.method == "crown-ibp"
                else EpsilonSchedule(eps, warmup_epochs=args.warmup_epochs, start=min(args.start_eps, eps)))
    config = fit_config_from_args(args)
    dataset = dataset_from_args(args)
    domain = (0.0, 1.0) if args.domain_clip else None
    model = build_seeded(args.model, dataset, args.seed).to(device)
    validate = certified_accuracy_on(dataset.val.head(args.limit_val), eps, method=args.method, domain=domain)
    result = robust_fit(model, dataset.train.head(args.limit_train), schedule=schedule, config=config,
                        validate=validate, method=args.method, domain=domain, projections=args.projections)
    test = dataset.test.head(args.limit_eval)
    metrics = {
        "dataset": dataset.name,
        "trainer": "robust",
        "robust_method": args.method,
        "schedule": {"kind": type(schedule).__name__, **dataclasses.asdict(schedule)},
        "best_epoch": result.best_epoch,
        "val_certified_accuracy": result.best_score,
        "train_seconds": round(result.seconds, 2),
        "config": vars(config),
        "history": result.history,
        "test": robustness_metrics(model, test.floats(), test.labels, eps, method=certificate_method(args.method),
                                   domain=domain),
    }
    save_model(args.out, model, spec=args.model, input_shape=dataset.input_shape, classes=dataset.classes,
               metrics=metrics)
    print_json({"best_epoch": result.best_epoch, **{k: metrics["test"][k] for k in
                ("n", "eps", "clean_error", "pgd_error", "robust_error_bound")}})
    return 0
