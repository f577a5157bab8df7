"""A verification property in the VNN-LIB sense: an input box and an *unsafe* output set.

The property **holds** (answer ``unsat``) when no input in the box reaches the unsafe set;
it is **violated** (answer ``sat``) when some input in the box does.

The unsafe set is a disjunction of conjunctions of linear inequalities on the outputs
``y = f(x)``::

    unsafe = OR_k { y : A_k y <= b_k }        A_k: (m_k, outputs), b_k: (m_k,)

so a VNN-LIB ``(assert (or (and (<= Y_0 Y_3) ...) ...))`` gives one ``(A_k, b_k)`` per
``and``. Robustness of class ``c`` ("class c wins everywhere in the box") is
``unsafe = OR_{j != c} { y : y_c - y_j <= 0 }``: one single-row conjunction per other class.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


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
