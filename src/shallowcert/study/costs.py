"""Cost estimates of the study's jobs, in seconds on one CPU thread, for ``--plan`` and the
progress bar's remaining time.

The units are measured on this machine, on one thread, in CPU time (unaffected by other work
on a shared machine), best of a few random batches of 64:
the time of one training step (forward + backward + Adam) per example of each
architecture, and, per architecture and bound method, of one certified-training step
(the bound-based loss, backward, Adam) and of one float64 bound evaluation. A job's
estimate counts the examples it pushes through its model:

* training: ``epochs × (train examples + validation examples / 3)`` (a forward pass costs
  about a third of a training step);
* distillation: the same with the transfer set in place of the train split; the teacher's
  logits once, ``transfer examples / 3`` of the teacher;
* attacks: ``points × steps × epsilons`` gradient steps per attack, times
  :data:`ATTACK_SURVIVORS` (a sweep attacks only the points still standing and stops a
  point at its first success; a rough figure, not a measurement);
* certified training: ``epochs × train examples`` certified-training steps (``crown-ibp``:
  CROWN-IBP plus IBP steps during its ramps, IBP steps after them); a certificate
  with its radius search: ``1 +`` :data:`RADIUS_EVALUATIONS` bound evaluations per point
  (the search's typical count, :mod:`shallowcert.certify.search`);
* the exact radius (complete verifier): ``points × time limit`` seconds, the limit being
  wall time per point (the limit, not a measurement: a point settled early takes less, a
  verifier step running at the limit a little more).

Epoch counts are the maximum (early stopping only shortens jobs). The wall time of a plan
(:func:`wall_seconds`) adds what the steps leave out, fitted on the first 73 jobs of a
fashion-mnist run on this project's 2-core machine (2 jobs at a time, 2026-12-01: a job's
seconds ≈ 1.105 × its estimate + 15.6 s, the estimate's steps timed while the run was going,
1.096× the same steps timed on the idle machine before it): :data:`JOB_START` seconds per job
(worker start, data, saving the model and its test predictions) and :data:`SHARED_SLOWDOWN`
(1.105 × 1.096 ≈ 1.2) when jobs run side by side, against steps timed on an idle machine (jobs
share the caches and memory bandwidth that a step timed alone has to itself). A plan made
while other work runs times its steps slow, so it comes out about 10 % high.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

import torch

from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.data import Dataset
from shallowcert.models.spec import build
from shallowcert.robust import DEFAULT_PROJECTIONS, certificate_method, projected_robust_loss, robust_loss

if TYPE_CHECKING:
    from shallowcert.study.config import StudyConfig
    from shallowcert.study.context import TrainingConfig

JOB_START = 15.0
SHARED_SLOWDOWN = 1.2
RADIUS_EVALUATIONS = 8
CERTIFIED_VALIDATION = 1000  # validation points certified per epoch of certified training
ATTACK_SURVIVORS = 0.25
FORWARD = 1 / 3
# Unlabelled transfer sets whose size is known without building them (``extra`` splits);
# the others are the train split plus two augmented copies.
TRANSFER_SIZES = {"svhn": 531_131, "svhn-middle": 531_131, "cifar10": 110_000}
_BATCH, _REPEATS = 64, 3


def _per_example(step: Callable[[], None]) -> float:
    """Best of :data:`_REPEATS` timed calls of ``step`` (after one warm-up), per example, on one
    thread, in CPU seconds of this process: other work on a shared machine slows the wall
    clock, not the CPU time, so the plan does not depend on the load it was made under."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        best = float("inf")
        for _ in range(_REPEATS + 1):
            start = time.process_time()
            step()
            best = min(best, time.process_time() - start)
    finally:
        torch.set_num_threads(threads)
    return best / _BATCH


def step_seconds(spec: str, input_shape: tuple[int, int, int], classes: int, *, bound: str | None = None,
                 eps: float = 0.01, train: bool = True, projections: int = DEFAULT_PROJECTIONS) -> float:
    """Measured seconds per example of one training step of ``spec`` (``bound``: with the
    certified loss of that training method at ``eps``; ``dual-projected`` with ``projections``),
    or with ``train=False`` of one float64 ``bound`` evaluation without gradients."""
    model = build(spec, input_shape, classes)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((_BATCH, *input_shape), generator=generator)
    y = torch.randint(0, classes, (_BATCH,), generator=generator)
    if not train:
        if bound is None:
            raise ValueError("a bound evaluation needs a bound method")
        method = bound
        model, x = model.double(), x.double()
        spec_rows = margin_spec(y, classes).double()
        radius = torch.full((_BATCH,), eps, dtype=torch.float64)

        def evaluate() -> None:
            with torch.no_grad():
                lower_bounds(model, InputSet(x, radius), spec_rows, method=method)
        return _per_example(evaluate)
    optimizer = torch.optim.Adam(model.parameters())

    def step() -> None:
        if bound is None:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        elif bound == "dual-projected":
            loss = projected_robust_loss(model, x, y, eps, projections=projections).loss
        else:
            loss = robust_loss(model, x, y, eps, method=bound).loss
        optimizer.zero_grad()
        torch.autograd.backward(loss)
        optimizer.step()
    return _per_example(step)


def wall_seconds(costs: list[float], parallel: int) -> float:
    """Estimated wall time of jobs with one-thread ``costs`` on ``parallel`` workers:
    ``sum(cost * slowdown + JOB_START) / parallel``, the slowdown :data:`SHARED_SLOWDOWN` when
    more than one job runs at a time, else 1."""
    slowdown = SHARED_SLOWDOWN if parallel > 1 else 1.0
    return sum(cost * slowdown + JOB_START for cost in costs) / max(1, parallel)


class CostModel:
    """Estimates for one config's jobs; step times measured once per architecture."""

    def __init__(self, config: StudyConfig, dataset: Callable[[], Dataset]) -> None:
        self._config = config
        self._dataset = dataset
        self._steps: dict[tuple[str, str | None, bool], float] = {}

    def step(self, spec: str, bound: str | None = None, *, train: bool = True) -> float:
        """Measured seconds per example (:func:`step_seconds`), once per combination."""
        key = (spec, bound, train)
        if key not in self._steps:
            data = self._dataset()
            self._steps[key] = step_seconds(spec, data.input_shape, data.classes, bound=bound, train=train,
                                            projections=self._config.certification.projections)
        return self._steps[key]

    def examples(self, transfer: str) -> int:
        """Examples per epoch on transfer set ``train`` or ``extra``."""
        data, limit = self._dataset(), self._config.data.transfer_limit
        if transfer == "train":
            return len(data.train)
        size = TRANSFER_SIZES.get(data.name, 3 * len(data.train))
        return min(size, limit) if limit is not None else size

    def training(self, spec: str, training: TrainingConfig, *, transfer: str = "train", epochs: int | None = None,
                 factor: float = 1.0) -> float:
        """``epochs × (examples × factor + validation / 3)`` training steps of ``spec``
        (``factor``: passes per example, e.g. an attack's steps plus one)."""
        per_epoch = self.examples(transfer) * factor + len(self._dataset().val) * FORWARD
        return (epochs or training.epochs) * per_epoch * self.step(spec)

    def robust_training(self, spec: str, training: TrainingConfig, method: str, *, epochs: int | None = None,
                        warmup_epochs: int = 1) -> float:
        """``epochs × train examples`` certified-training steps with ``method``, plus the
        certified accuracy of :data:`CERTIFIED_VALIDATION` validation points each epoch (with
        the exact bound of :func:`shallowcert.robust.certificate_method`). ``crown-ibp`` runs its
        ramps over the first ``warmup_epochs``: there a step computes both CROWN-IBP and IBP
        bounds, afterwards IBP only (:mod:`shallowcert.robust.crown_ibp`)."""
        epochs = epochs or training.epochs
        examples = len(self._dataset().train)
        validation = min(CERTIFIED_VALIDATION, len(self._dataset().val)) * self.step(
            spec, certificate_method(method), train=False)
        if method == "crown-ibp":
            ramp = min(max(1, warmup_epochs), epochs)
            steps = ramp * (self.step(spec, "crown-ibp") + self.step(spec, "ibp")) + (epochs - ramp) * self.step(spec, "ibp")
        else:
            steps = epochs * self.step(spec, method)
        return examples * steps + epochs * validation

    def logits(self, teacher_spec: str, transfer: str) -> float:
        return self.examples(transfer) * FORWARD * self.step(teacher_spec)

    def attack(self, spec: str, *, points: int, steps: int, epsilons: int) -> float:
        return points * steps * epsilons * ATTACK_SURVIVORS * self.step(spec)

    def robustness(self, spec: str, *, points: int, method: str, pgd_eps: int) -> float:
        """Certificate, radius search and a PGD sweep on ``points`` test points."""
        bounds = points * (1 + RADIUS_EVALUATIONS) * self.step(spec, method, train=False)
        return bounds + self.attack(spec, points=points, steps=self._config.attacks.steps, epsilons=pgd_eps)

    @staticmethod
    def exact(*, points: int, time_limit: float) -> float:
        """The exact radius of ``points`` points: ``time_limit`` seconds of bisection each (wall
        time; the limit is checked between verifier steps, so a point can run over by one step,
        and the certified-radius search and attack it starts from are not counted)."""
        return points * time_limit

    def pruning(self, spec: str, *, evaluations: int = 20) -> float:
        return evaluations * len(self._dataset().val) * FORWARD * self.step(spec)
