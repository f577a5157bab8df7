"""Cost estimates of the study's jobs, in seconds on one CPU thread, for ``--plan`` and the
progress bar's remaining time.

The unit is measured: the time of one training step (forward + backward + Adam) per
example of each architecture, timed on a few random batches of 64 on this machine. A
job's estimate counts the examples it pushes through its model:

* training: ``epochs × (train examples + validation examples / 3)`` (a forward pass costs
  about a third of a training step);
* distillation: the same with the transfer set in place of the train split; the teacher's
  logits once, ``transfer examples / 3`` of the teacher;
* attacks: ``points × steps × epsilons`` gradient steps per attack, times
  :data:`ATTACK_SURVIVORS` (a sweep attacks only the points still standing and stops a
  point at its first success; a rough figure, not a measurement);
* bound computations cost :data:`BOUND_FACTOR` training steps per example — a documented
  rough figure (bounds push a specification matrix back through every layer), not a
  measurement; certified training multiplies each step by it, a certificate with its
  radius search takes :data:`RADIUS_EVALUATIONS` bound evaluations per point;
* the exact radius (complete verifier): ``points × time limit`` seconds, the limit being
  wall time per point (the limit, not a measurement: a point settled early takes less, a
  verifier step running at the limit a little more).

Epoch counts are the maximum (early stopping only shortens jobs), so the plan is an upper
estimate; it ignores data loading and start-up.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch

from shallowcert.data import Dataset
from shallowcert.models.spec import build

BOUND_FACTOR = {"ibp": 2.0, "crown-ibp": 6.0, "dual": 30.0, "crown": 30.0, "alpha-crown": 150.0}
RADIUS_EVALUATIONS = 8
ATTACK_SURVIVORS = 0.25
FORWARD = 1 / 3
# Unlabelled transfer sets whose size is known without building them (``extra`` splits);
# the others are the train split plus two augmented copies.
TRANSFER_SIZES = {"svhn": 531_131, "svhn-middle": 531_131, "cifar10": 110_000}
_BATCH, _REPEATS = 64, 3


def step_seconds(spec: str, input_shape: tuple[int, int, int], classes: int) -> float:
    """Measured seconds of one training step per example of ``spec`` (batch 64, best of 3)."""
    model = build(spec, input_shape, classes)
    optimizer = torch.optim.Adam(model.parameters())
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((_BATCH, *input_shape), generator=generator)
    y = torch.randint(0, classes, (_BATCH,), generator=generator)
    best = float("inf")
    for _ in range(_REPEATS + 1):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        best = min(best, time.perf_counter() - start)
    return best / _BATCH


class CostModel:
    """Estimates for one config's jobs; step times measured once per architecture."""

    def __init__(self, config: dict[str, Any], dataset: Callable[[], Dataset]) -> None:
        self._config = config
        self._dataset = dataset
        self._steps: dict[str, float] = {}

    def step(self, spec: str) -> float:
        if spec not in self._steps:
            data = self._dataset()
            self._steps[spec] = step_seconds(spec, data.input_shape, data.classes)
        return self._steps[spec]

    def examples(self, transfer: str) -> int:
        """Examples per epoch on transfer set ``train`` or ``extra``."""
        data, limit = self._dataset(), self._config["data"]["transfer_limit"]
        if transfer == "train":
            return len(data.train)
        size = TRANSFER_SIZES.get(data.name, 3 * len(data.train))
        return min(size, limit) if limit is not None else size

    def training(self, spec: str, training: dict[str, Any], *, transfer: str = "train", epochs: int | None = None,
                 factor: float = 1.0) -> float:
        """``epochs × (examples × factor + validation / 3)`` training steps of ``spec``."""
        per_epoch = self.examples(transfer) * factor + len(self._dataset().val) * FORWARD
        return (epochs or training["epochs"]) * per_epoch * self.step(spec)

    def robust_training(self, spec: str, training: dict[str, Any], method: str, *, epochs: int | None = None) -> float:
        return self.training(spec, training, epochs=epochs, factor=BOUND_FACTOR[method])

    def logits(self, teacher_spec: str, transfer: str) -> float:
        return self.examples(transfer) * FORWARD * self.step(teacher_spec)

    def attack(self, spec: str, *, points: int, steps: int, epsilons: int) -> float:
        return points * steps * epsilons * ATTACK_SURVIVORS * self.step(spec)

    def robustness(self, spec: str, *, points: int, method: str, pgd_eps: int) -> float:
        """Certificate, radius search and a PGD sweep on ``points`` test points."""
        bounds = points * (1 + RADIUS_EVALUATIONS) * BOUND_FACTOR[method] * FORWARD * self.step(spec)
        return bounds + self.attack(spec, points=points, steps=self._config["attacks"]["steps"], epsilons=pgd_eps)

    @staticmethod
    def exact(*, points: int, time_limit: float) -> float:
        """The exact radius of ``points`` points: ``time_limit`` seconds of bisection each (wall
        time; the limit is checked between verifier steps, so a point can run over by one step,
        and the certified-radius search and attack it starts from are not counted)."""
        return points * time_limit

    def pruning(self, spec: str, *, evaluations: int = 20) -> float:
        return evaluations * len(self._dataset().val) * FORWARD * self.step(spec)
