"""``shallowcert distill``: train a student to imitate a teacher, saved as a model directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from shallowcert.cli.common import (add_dataset_arguments, add_device_argument, check_compatible, dataset_from_args,
                                    device_from_args, positive_float, positive_int, print_json)
from shallowcert.cli.train import add_fit_arguments, fit_config_from_args, save_trained
from shallowcert.distill import METHODS, TRANSFER_SETS, DistillMethod, distill_student, transfer_set
from shallowcert.models import load_model
from shallowcert.models.spec import expand

CACHE_FOLDER = "logits-cache"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("distill", help="distil a teacher model directory into a student architecture")
    p.add_argument("--teacher", required=True, metavar="DIR", help="teacher model directory")
    p.add_argument("--student", required=True, metavar="SPEC", help="student architecture spec, e.g. scnn2:16-32")
    p.add_argument("--method", required=True, choices=METHODS, help="distillation loss")
    p.add_argument("--temperature", type=positive_float, default=1.0,
                   help="T for the temperature and hinton methods (default 1)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the soft term of the hinton method")
    p.add_argument("--eps", type=positive_float, default=0.1,
                   help="L-inf radius in input units for the adversarial method")
    p.add_argument("--attack-steps", type=positive_int, default=7, help="PGD steps for the adversarial method")
    p.add_argument("--step-size", type=positive_float, default=None,
                   help="PGD step in input units (default 2.5 * eps / attack steps)")
    p.add_argument("--transfer", choices=TRANSFER_SETS, default="train",
                   help="train: labelled train split; extra: the dataset's unlabelled transfer set")
    p.add_argument("--cache-dir", default=None,
                   help=f"where teacher logits are cached (default <teacher>/{CACHE_FOLDER})")
    p.add_argument("--limit-train", type=positive_int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", required=True, help="student model directory to write")
    add_dataset_arguments(p)
    add_fit_arguments(p)
    add_device_argument(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    device = device_from_args(args)
    expand(args.student)  # reject a bad spec before loading data
    method = DistillMethod(args.method, temperature=args.temperature, alpha=args.alpha, eps=args.eps,
                           attack_steps=args.attack_steps, step_size=args.step_size)
    config = fit_config_from_args(args)
    teacher = load_model(args.teacher, device=device)
    dataset = dataset_from_args(args)
    check_compatible(teacher, dataset)
    cache_dir = Path(args.cache_dir) if args.cache_dir else Path(args.teacher) / CACHE_FOLDER
    student, result = distill_student(teacher.model, args.student, dataset, method=method, config=config,
                                      transfer=args.transfer, cache_dir=cache_dir, limit=args.limit_train,
                                      device=device)
    metrics = save_trained(args.out, student, spec=args.student, dataset=dataset, result=result, config=config,
                           trainer="distillation", teacher=str(args.teacher), teacher_spec=teacher.spec,
                           **method.settings(), transfer=args.transfer,
                           transfer_size=len(transfer_set(dataset, args.transfer, limit=args.limit_train)))
    print_json({k: metrics[k] for k in ("method", "val_accuracy", "test_accuracy", "best_epoch", "train_seconds")})
    return 0
