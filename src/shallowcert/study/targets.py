"""What a run was sized to reach: the optional ``targets`` section of a study config.

A preset (or a user's config) may state the quality its sizes are meant to buy, e.g. the
``fashion-mnist`` preset's floors::

    targets:
      teacher_test_accuracy: 0.91   # stage 1's teacher, full test split, every seed
      student_gap: 1.5              # best distilled scnn2 student, percentage points below its teacher
      robust_error_bound: 0.36      # each robust certification teacher at certification.eps
      robust_clean_error: 0.25      # ... and its clean error, on the certification points
      points: 1000                  # certification and attacks on at least this many test points

No stage reads this section, so it never changes a stage's fingerprint: targets can be
added to a finished run's report (``shallowcert report RUN_DIR --targets FILE``) without
redoing any work. The report checks them in Table T.1 (:mod:`shallowcert.report.targets`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import yaml

from shallowcert.errors import UserError
from shallowcert.study.record import Record
from shallowcert.study.schema import Field, Schema, at_least, between, one_of, validate

FAMILIES = ("snn", "scnn1", "scnn2")


@dataclass(frozen=True)
class TargetsConfig(Record):
    """Floors and ceilings a run should reach; ``None``: not a target. Fractions in [0, 1],
    ``student_gap`` in percentage points of test accuracy."""

    teacher_test_accuracy: float | None = None
    student_gap: float | None = None
    student_family: str = "scnn2"
    robust_error_bound: float | None = None
    robust_clean_error: float | None = None
    points: int | None = None

    def given(self) -> bool:
        """Whether any target is set (``student_family`` alone only says which family)."""
        return any(getattr(self, f.name) is not None for f in fields(self) if f.name != "student_family")


SCHEMA: Schema = {
    "teacher_test_accuracy": Field("float?", None, between(0.0, 1.0), "stage 1's teacher: test accuracy at "
                                   "least this, on every seed"),
    "student_gap": Field("float?", None, at_least(0.0), "the best distilled student of student_family: at most "
                         "this many percentage points below its teacher, on every seed"),
    "student_family": Field("str", "scnn2", one_of(*FAMILIES)),
    "robust_error_bound": Field("float?", None, between(0.0, 1.0), "each robustly trained certification "
                                "teacher: robust error bound at certification.eps at most this"),
    "robust_clean_error": Field("float?", None, between(0.0, 1.0), "... and its clean error at most this"),
    "points": Field("int?", None, at_least(1), "certification and attacks on at least this many test points"),
}


def load_targets(path: str | Path) -> TargetsConfig:
    """A YAML file holding the keys of :data:`SCHEMA`; UserError listing every mistake."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"targets file {file} does not exist")
    try:
        root = yaml.compose(file.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{file}: not valid YAML ({str(exc).splitlines()[0]})") from None
    values, errors = validate(SCHEMA, root, source=str(file))
    if errors:
        raise UserError(f"{len(errors)} problem(s) in the targets:\n  " + "\n  ".join(errors))
    targets = TargetsConfig.from_json(values)
    if not targets.given():
        raise UserError(f"{file} sets no target (known: {', '.join(k for k in SCHEMA if k != 'student_family')})")
    return targets
