"""The study's configuration: schema, presets, and loading with up-front validation.

A config is YAML (or a preset name). Everything is checked before any work starts:
unknown keys, wrong types and impossible values are reported all at once, each with its
key path and line. Sections follow the thesis' chapter 8, one per stage; once valid, the
config becomes a :class:`StudyConfig` of the stages' frozen section records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from shallowcert.bounds import METHODS as BOUND_METHODS
from shallowcert.data import DATASETS
from shallowcert.errors import UserError
from shallowcert.models.spec import expand
from shallowcert.robust import DEFAULT_PROJECTIONS, TRAIN_METHODS
from shallowcert.study.context import DataConfig
from shallowcert.study.presets import PRESETS
from shallowcert.study.record import OMIT_NONE, Record
from shallowcert.study.schema import (Field, Schema, at_least, between, greater_than, non_empty, one_of,
                                      all_of, validate)
from shallowcert.study.stages.attacks import AttacksConfig
from shallowcert.study.stages.certification import CertificationConfig, TeacherKind
from shallowcert.study.stages.improvement import ImprovementConfig
from shallowcert.study.stages.pruning import PruningConfig
from shallowcert.study.stages.teacher import StudentsConfig, TeacherConfig
from shallowcert.study.stages.temperature import TemperatureConfig
from shallowcert.study.targets import SCHEMA as TARGETS_SCHEMA
from shallowcert.study.targets import TargetsConfig
from shallowcert.training import OPTIMIZERS

ATTACKS = ("fgsm", "pgd", "bim", "mim")


@dataclass(frozen=True)
class StudyConfig(Record):
    """A validated study config: its name, the training seeds, one record per section and
    the targets its sizes are meant to reach (absent when none is set)."""

    name: str
    seeds: list[int]
    trial: bool
    data: DataConfig
    teacher: TeacherConfig
    students: StudentsConfig
    temperature: TemperatureConfig
    pruning: PruningConfig
    attacks: AttacksConfig
    certification: CertificationConfig
    improvement: ImprovementConfig
    targets: TargetsConfig | None = field(default=None, metadata=OMIT_NONE)


def _training(epochs: int, lr: float = 1e-3, batch_size: int = 128, patience: int = 3) -> Schema:
    return {
        "epochs": Field("int", epochs, at_least(1)),
        "optimizer": Field("str", "adam", one_of(*OPTIMIZERS)),
        "lr": Field("float", lr, greater_than(0)),
        "batch_size": Field("int", batch_size, at_least(1)),
        "patience": Field("int", patience, at_least(1)),
    }


SCHEMA: Schema = {
    "name": Field("str", "study"),
    "seeds": Field("list[int]", [0], all_of(non_empty, at_least(0)),
                   "training seeds: every stage runs once per seed"),
    "trial": Field("bool", False, None, "sizes for trying the pipeline: the report says its verdicts are not "
                   "evidence"),
    "data": {
        "dataset": Field("str", "fashion-mnist", one_of(*DATASETS)),
        "split_seed": Field("int", 0, at_least(0), "seed of the validation split and the transfer set's "
                            "augmentation: the same data for every training seed"),
        "data_dir": Field("str?", None),
        "val_size": Field("int?", None, at_least(1)),
        "train_limit": Field("int?", None, at_least(10), "use the first N training points"),
        "transfer_limit": Field("int?", None, at_least(10), "use the first N transfer images"),
    },
    "teacher": {
        "spec": Field("str", "teacher-svhn"),
        "training": _training(10),
    },
    "students": {
        "snn": Field("list[int]", [128, 512], at_least(1), "hidden widths"),
        "scnn1": Field("list[int]", [8, 32], at_least(1), "filters"),
        "scnn2": Field("list[str]", ["8-16", "32-64"], None, "filters C1-C2"),
        "transfer_sets": Field("list[str]", ["train", "extra"], all_of(non_empty, one_of("train", "extra"))),
        "training": _training(10),
    },
    "temperature": {
        "scnn2": Field("list[str]", ["8-16"], non_empty),
        "temperatures": Field("list[float]", [0.5, 1.0, 2.0, 5.0], all_of(non_empty, greater_than(0))),
        "transfer_set": Field("str", "train", one_of("train", "extra")),
    },
    "pruning": {
        "max_drop": Field("float", 0.0, between(0.0, 1.0), "largest validation accuracy drop allowed"),
    },
    "attacks": {
        "attacks": Field("list[str]", ["pgd", "bim", "mim"], all_of(non_empty, one_of(*ATTACKS))),
        "eps": Field("list[float]", [0.0, 0.02, 0.05, 0.1, 0.15, 0.2], all_of(non_empty, between(0.0, 1.0))),
        "steps": Field("int", 40, at_least(1)),
        "relative_step": Field("float", 0.5, greater_than(0), "step size as a fraction of eps"),
        "points": Field("int", 1000, at_least(1), "first N test points"),
    },
    "certification": {
        "teacher_spec": Field("str", "cert-teacher"),
        "student_spec": Field("str", "layers:c16k4s2p1,relu,flat,fc"),
        "eps": Field("float", 0.1, greater_than(0), "robust-training / certification epsilon"),
        "train_method": Field("str", "dual", one_of(*TRAIN_METHODS), "certified training: a bound method, "
                              "dual-projected (random projections), crown-ibp (with the ramps of Zhang et al.)"),
        "projections": Field("int", DEFAULT_PROJECTIONS, at_least(1), "Cauchy projections of dual-projected"),
        "method": Field("str", "dual", one_of(*BOUND_METHODS), "bound used for certificates"),
        "warmup_epochs": Field("int", 2, at_least(0)),
        "teacher_training": _training(10),
        "robust_training": _training(10),
        "student_training": _training(10),
        "points": Field("int", 1000, at_least(1), "first N test points certified"),
        "radius_rtol": Field("float", 0.01, greater_than(0), "radius search stops at relative bracket width "
                             "(the certified radius, and the exact radius bracket that settles a point)"),
        "exact_points": Field("int", 100, at_least(0), "exact robust radius (complete verifier) of the first N "
                              "certified points (capped at 'points'); 0: no exact radii"),
        "exact_time_limit": Field("float", 20.0, greater_than(0), "seconds per point for the exact radius"),
        "pgd_eps": Field("list[float]", [0.0, 0.05, 0.1, 0.15, 0.2], all_of(non_empty, between(0.0, 1.0))),
        "teachers": Field("list[str]?", None, all_of(non_empty, one_of(*(k.value for k in TeacherKind))),
                          "whose models are certified: cert-teacher (teacher_spec, ReLU-only) and/or "
                          "distillation-teacher (stage 1's teacher itself, max-pools included); "
                          "not given: cert-teacher"),
    },
    "improvement": {
        "temperature": Field("float", 2.0, greater_than(0)),
        "retrain_epochs": Field("int", 3, at_least(1), "robust retraining of the distilled student"),
        "adversarial_eps": Field("float", 0.1, between(0.0, 1.0)),
        "adversarial_steps": Field("int", 7, at_least(1)),
        "training": _training(10),
    },
    "targets": TARGETS_SCHEMA,
}


def _semantic_checks(config: StudyConfig) -> list[str]:
    """Checks that need more than one value's type: specs must parse."""
    errors: list[str] = []
    specs = [("teacher.spec", config.teacher.spec),
             ("certification.teacher_spec", config.certification.teacher_spec),
             ("certification.student_spec", config.certification.student_spec)]
    specs += [(f"students.scnn2[{i}]", f"scnn2:{w}") for i, w in enumerate(config.students.scnn2)]
    specs += [(f"temperature.scnn2[{i}]", f"scnn2:{w}") for i, w in enumerate(config.temperature.scnn2)]
    for where, spec in specs:
        try:
            expand(spec)
        except UserError as exc:
            errors.append(f"{where}: {exc}")
    if len(set(config.seeds)) != len(config.seeds):
        errors.append(f"seeds: every seed must appear once, got {config.seeds}")
    teachers = [k.value for k in config.certification.teacher_kinds()]
    if len(set(teachers)) != len(teachers):
        errors.append(f"certification.teachers: every teacher must appear once, got {teachers}")
    if not config.students.specs():
        errors.append("students: at least one student width is needed")
    return errors


def _refuse_old_seed_key(root: yaml.Node | None, source: str) -> None:
    """``seed: N`` (one seed for data and training) was replaced by ``seeds`` and ``data.split_seed``."""
    if isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "seed":
                raise UserError(f"{source}:{key.start_mark.line + 1} seed: replaced by 'seeds: [{value.value}]' "
                                "(the training seeds; every stage runs once per seed) and 'data.split_seed' "
                                "(the validation split, fixed across seeds)")


def load_config(path: str | Path | None = None, *, preset: str | None = None) -> StudyConfig:
    """Load and validate a config file or a preset; raise UserError listing every mistake."""
    if (path is None) == (preset is None):
        raise UserError("give either a config file or --preset NAME")
    if preset is not None:
        if preset not in PRESETS:
            raise UserError(f"unknown preset '{preset}' (known: {', '.join(PRESETS)})")
        text, source = yaml.safe_dump(PRESETS[preset]), f"preset {preset}"
    else:
        assert path is not None
        file = Path(path)
        if not file.is_file():
            raise UserError(f"config file {file} does not exist")
        text, source = file.read_text(), str(file)
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{source}: not valid YAML ({str(exc).splitlines()[0]})") from None
    _refuse_old_seed_key(root, source)
    values, errors = validate(SCHEMA, root, source=source)
    if not TargetsConfig.from_json(values["targets"]).given():
        values["targets"] = None
    config = StudyConfig.from_json(values)  # every value wrong in the file was left at its default
    errors += [f"{source} {message}" for message in _semantic_checks(config)]
    if errors:
        raise UserError(f"{len(errors)} problem(s) in the config:\n  " + "\n  ".join(errors))
    return config
