"""A verification property in the VNN-LIB sense: an input box and an *unsafe* output set.

The property **holds** (answer ``unsat``) when no input in the box reaches the unsafe set;
it is **violated** (answer ``sat``) when some input in the box does.

The unsafe set is a disjunction of conjunctions of linear inequalities on the outputs
``y = f(x)``::

    unsafe = OR_k { y : A_k y <= b_k }        A_k: (m_k, outputs), b_k: (m_k,)

so a VNN-LIB ``(assert (or (and (<= Y_0 Y_3) ...) ...))`` gives one ``(A_k, b_k)`` per
``and``. Robustness of class ``c`` ("class c wins everywhere in the box") is
``unsafe = OR_{j != c} { y : y_c - y_j <= 0 }``: one single-row conjunction per other class.

The *violation* of an output ``y`` is ``min_k max_i (A_k y - b_k)_i``: ``<= 0`` exactly when
``y`` is unsafe. A lower bound ``> 0`` of some row ``(A_k y - b_k)_i`` over a set of inputs
proves that disjunct ``k`` is unreachable there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from shallowcert.errors import UserError


@dataclass(frozen=True)
class Conjunction:
    """``{y : matrix @ y <= bound}`` (every row at once); ``matrix`` ``(m, outputs)``, ``bound`` ``(m,)``."""

    matrix: torch.Tensor
    bound: torch.Tensor


@dataclass(frozen=True)
class Property:
    """Input box ``lower <= x <= upper`` (shaped like one model input, no batch dimension)
    and the unsafe output set, a disjunction of :class:`Conjunction`."""

    lower: torch.Tensor
    upper: torch.Tensor
    unsafe: tuple[Conjunction, ...]

    def __post_init__(self) -> None:
        lower, upper = self.lower, self.upper
        if not (isinstance(lower, torch.Tensor) and isinstance(upper, torch.Tensor)) or lower.shape != upper.shape:
            raise UserError("a property's lower and upper input bounds must be tensors of the same shape")
        if not bool(torch.isfinite(lower).all() & torch.isfinite(upper).all()):
            raise UserError("a property's input bounds must be finite")
        if bool((lower > upper).any()):
            raise UserError("a property's input box is empty (some lower bound exceeds its upper bound)")
        if not self.unsafe:
            raise UserError("a property needs at least one unsafe conjunction")
        outputs = self.unsafe[0].matrix.shape[-1]
        for part in self.unsafe:
            if part.matrix.dim() != 2 or part.matrix.shape[1] != outputs or part.bound.shape != part.matrix.shape[:1]:
                raise UserError("every unsafe conjunction needs a matrix (m, outputs) and a bound (m,), "
                                "with the same number of outputs")
            if not bool(torch.isfinite(part.matrix).all() & torch.isfinite(part.bound).all()):
                raise UserError("an unsafe conjunction contains NaN or infinite values")

    @property
    def outputs(self) -> int:
        """Number of network outputs the unsafe set is written over."""
        return int(self.unsafe[0].matrix.shape[1])

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Property:
        """The same property with every tensor on ``device`` in ``dtype`` (``None``: unchanged)."""
        def move(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        return Property(move(self.lower), move(self.upper),
                        tuple(Conjunction(move(c.matrix), move(c.bound)) for c in self.unsafe))

    def rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every conjunction's rows stacked: ``matrix (R, outputs)``, ``bound (R,)`` and the
        index of the conjunction each row belongs to, ``owner (R,)`` (int64)."""
        matrix = torch.cat([c.matrix for c in self.unsafe])
        bound = torch.cat([c.bound for c in self.unsafe])
        owner = torch.cat([torch.full((len(c.bound),), k, dtype=torch.int64, device=bound.device)
                           for k, c in enumerate(self.unsafe)])
        return matrix, bound, owner

    def violation(self, outputs: torch.Tensor) -> torch.Tensor:
        """``min_k max_i (A_k y - b_k)_i`` per output row ``y`` of ``outputs (N, outputs)``:
        ``<= 0`` exactly when ``y`` lies in the unsafe set."""
        values = [(outputs @ c.matrix.to(outputs).T - c.bound.to(outputs)).amax(dim=1) for c in self.unsafe]
        return torch.stack(values, dim=1).amin(dim=1)

    def contains(self, x: torch.Tensor) -> torch.Tensor:
        """Bool ``(N,)``: each row of ``x (N, *input shape)`` lies in the input box."""
        lower, upper = self.lower.to(x), self.upper.to(x)
        return ((x >= lower) & (x <= upper)).flatten(1).all(dim=1)


def robustness_property(center: torch.Tensor, eps: float, label: int, classes: int, *,
                        domain: tuple[float, float] | None = (0.0, 1.0)) -> Property:
    """L-inf robustness of class ``label`` at ``center`` (one input, no batch dimension).

    Input box: ``[max(lo, c - eps), min(hi, c + eps)]`` (``domain=(lo, hi)``, ``None``: no
    clipping), ``eps`` in input units. Unsafe: ``OR_{j != label} { y : y_label - y_j <= 0 }``,
    so ``unsat`` means class ``label`` wins strictly everywhere in the box (ties count as unsafe).
    """
    if not (math.isfinite(eps) and eps >= 0):
        raise UserError(f"eps must be a finite number >= 0, got {eps!r}")
    if classes < 2 or not 0 <= label < classes:
        raise UserError(f"label must lie in [0, {classes}) with at least 2 classes, got {label}")
    lower, upper = center - eps, center + eps
    if domain is not None:
        lower, upper = lower.clamp(min=domain[0]), upper.clamp(max=domain[1])
    eye = torch.eye(classes, dtype=center.dtype, device=center.device)
    unsafe = tuple(Conjunction((eye[label] - eye[j]).unsqueeze(0), center.new_zeros(1))
                   for j in range(classes) if j != label)
    return Property(lower, upper, unsafe)
