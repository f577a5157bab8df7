"""Exact verification of small ReLU networks by a mixed-integer program (HiGHS via SciPy).

Big-M encoding with the bounds engine's pre-activation bounds ``l <= z <= u`` on the
(sub)domain; every affine stretch between ReLUs (Linear, Conv2d, Flatten, folded affine
layers) becomes one dense matrix ``z = W a + b``. Per neuron:

* stable or split active (``l >= 0`` or state ``1``): ``a = z``, ``z >= 0``;
* stable or split inactive (``u <= 0`` or state ``-1``): ``a = 0``, ``z <= 0``;
* unstable: one binary ``d``; ``a >= z``, ``0 <= a <= u d``, ``a <= z - l (1 - d)``.

For each disjunct ``k`` not yet proved: ``minimise t  s.t.  A_k y - b_k <= t``, ``t >= -T``
(``T = TARGET``: going deeper into the unsafe set than that is never needed). HiGHS reports
a dual bound ``t_low <= t*``; the disjunct is unreachable when ``t_low > margin`` (or the
program is infeasible), where ``margin = FEASIBILITY * max(1, max |l|, max |u|) *
prod_j max(1, ||W_j||_inf) * max(1, ||A_k||_inf)`` covers HiGHS' feasibility and integrality
tolerances (about 1e-6) propagated through the layers — a guard band, not a rigorous error
analysis. A solution with ``t <= 0`` is only a candidate: its input is re-checked by running
the network (float64) and, if the solver's tolerances made it not quite unsafe, used as a
start for PGD. Never ``sat`` unverified.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from shallowcert.bounds import AffineMap, as_affine, as_relu
from shallowcert.verify.falsify import Counterexample, counterexample, falsify
from shallowcert.verify.property import Property
from shallowcert.verify.subdomain import SubdomainBounder, per_disjunct_max

FEASIBILITY = 1e-5   # HiGHS' mip feasibility / integrality tolerances (1e-6), with a factor 10 to spare
TARGET = 1e-2        # lower bound on t: an input that deep in the unsafe set is surely a counterexample
MAX_ENTRIES = 20_000_000  # largest dense layer matrix (entries) the MILP will build


def _dense(steps: list[AffineMap], in_shape: tuple[int, ...], dtype: torch.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(W, b)`` with ``steps(x) = W x + b`` on flattened activations shaped ``in_shape``
    (no steps, e.g. after a final ReLU: the identity)."""
    size = math.prod(in_shape)
    eye = torch.eye(size, dtype=dtype).reshape(size, *in_shape)
    bias = torch.zeros(1, *in_shape, dtype=dtype)
    for step in steps:
        eye = step.apply(eye)
        bias = step.apply(bias) + (0 if step.bias is None else step.bias)
    return eye.detach().reshape(size, -1).T.cpu().numpy(), bias.detach().reshape(-1).cpu().numpy()


class MilpSolver:
    """The MILP of ``model`` (float64, for re-checks) on subdomains of ``prop``'s box."""

    def __init__(self, model: nn.Module, prop: Property, bounder: SubdomainBounder) -> None:
        self.model, self.prop, self.bounder = model, prop, bounder
        steps, positions = bounder.network.steps, bounder.network.relu_positions
        edges = [-1, *positions, len(steps)]
        sizes = [math.prod(as_affine(steps[0]).in_shape)] + [math.prod(as_relu(steps[p]).shape) for p in positions]
        self.available = all(a * b <= MAX_ENTRIES for a, b in zip(sizes, sizes[1:] + [bounder.network.output_shape[0]]))
        self._stretches = [([as_affine(s) for s in steps[a + 1:b]],
                            bounder.network.input_shape if a < 0 else as_relu(steps[a]).shape)
                           for a, b in zip(edges, edges[1:])]
        self.lower = prop.lower.flatten().double().cpu().numpy()
        self.upper = prop.upper.flatten().double().cpu().numpy()

    @functools.cached_property
    def layers(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(W, b)`` of every affine stretch, built on the first solve: most verifications
        end before any MILP, and a wide layer's dense matrix is costly."""
        return [_dense(stretch, shape, torch.float64) for stretch, shape in self._stretches]

    def solve(self, states: tuple[torch.Tensor, ...], *, deadline: float,
              open_disjuncts: torch.Tensor | None = None) -> tuple[str, Counterexample | None]:
        """Decide the subdomain with split ``states`` (per ReLU, no batch dimension):
        ``("unsat" | "sat" | "unknown", counterexample or None)``."""
        if not self.available:
            return "unknown", None
        bounds = self.bounder.bound_domains(tuple(s.unsqueeze(0) for s in states),
                                            None if open_disjuncts is None else open_disjuncts.unsqueeze(0))
        if bool(bounds.verified[0]):
            return "unsat", None
        pre = [(lo[0].flatten().double().cpu().numpy(), up[0].flatten().double().cpu().numpy())
               for lo, up in bounds.pre_activation]
        known = [s.flatten().cpu().numpy() for s in bounds.states]
        rows = bounds.rows[0]
        best = per_disjunct_max(rows.unsqueeze(0), self.bounder.owner, len(self.prop.unsafe))[0]
        order = [k for k in torch.argsort(best).tolist()
                 if not bool(bounds.proved[0, k])]
        for k in order:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "unknown", None
            status, found = self._disjunct(k, pre, known, remaining)
            if status != "unsat":
                return status, found
        return "unsat", None

    def _disjunct(self, k: int, pre: list[tuple[np.ndarray, np.ndarray]], known: list[np.ndarray],
                  seconds: float) -> tuple[str, Counterexample | None]:
        part = self.prop.unsafe[k]
        matrix, bound = part.matrix.double().cpu().numpy(), part.bound.double().cpu().numpy()
        problem, scale = self._program(pre, known, matrix, bound)
        from scipy.optimize import milp  # scipy costs a second at start-up; most runs never get here
        c, constraints, variable_bounds, integrality = problem
        result = milp(c, constraints=constraints, bounds=variable_bounds, integrality=integrality,
                      options={"time_limit": max(seconds, 0.1), "disp": False})
        margin = FEASIBILITY * scale * max(1.0, float(np.abs(matrix).sum(1).max()))
        if result.status == 2:  # infeasible: even the tolerance-enlarged subdomain is empty
            return "unsat", None
        dual = result.get("mip_dual_bound")
        if dual is not None and np.isfinite(dual) and dual > margin:
            return "unsat", None
        if result.x is not None and result.fun is not None and result.fun <= margin:
            x = torch.as_tensor(result.x[:self.lower.size], dtype=torch.float64,
                                device=self.prop.lower.device).reshape(1, *self.prop.lower.shape)
            found = counterexample(self.model, self.prop, x)
            if found is None:
                found = falsify(self.model, self.prop, steps=30, restarts=0, step=0.02, starts=x,
                                deadline=time.monotonic() + max(seconds, 0.1),
                                disjuncts=torch.arange(len(self.prop.unsafe)) == k)
            if found is not None:
                return "sat", found
        return "unknown", None

    def _program(self, pre: list[tuple[np.ndarray, np.ndarray]], known: list[np.ndarray], matrix: np.ndarray,
                 bound: np.ndarray) -> tuple[tuple[Any, ...], float]:
        """``(c, constraints, bounds, integrality)`` of the disjunct's program and the margin's scale."""
        from scipy.optimize import Bounds, LinearConstraint
        from scipy.sparse import coo_matrix, csr_matrix, hstack, vstack
        sizes = [self.lower.size] + [lo.size for lo, _ in pre]
        unstable = [(known_j == 0) & (lo < 0) & (up > 0) for (lo, up), known_j in zip(pre, known)]
        binaries = [int(u.sum()) for u in unstable]
        offsets = np.cumsum([0] + sizes + binaries + [1])
        total = int(offsets[-1])
        t_index = total - 1
        var_low = np.concatenate([self.lower] + [np.zeros(n) for n in sizes[1:]] + [np.zeros(b) for b in binaries]
                                 + [np.array([-TARGET])])
        var_high = np.concatenate([self.upper] + [np.maximum(up, 0) for _, up in pre]
                                  + [np.ones(b) for b in binaries] + [np.array([np.inf])])
        blocks, low, high = [], [], []
        scale, largest = 1.0, 1.0
        for j, ((lo, up), state) in enumerate(zip(pre, known)):
            weight, bias = self.layers[j]
            scale *= max(1.0, float(np.abs(weight).sum(1).max()))
            n, previous = lo.size, int(offsets[j])
            active = (state == 1) | ((state == 0) & (lo >= 0))
            inactive = ~active & ((state == -1) | (up <= 0))
            free = unstable[j]
            a_start = int(offsets[j + 1])
            d_start = int(offsets[len(sizes) + j])
            d_index = np.full(n, -1)
            d_index[free] = d_start + np.arange(binaries[j])

            def row(select: np.ndarray, w_sign: float, a_coef: float, d_coef: np.ndarray | None,
                    lows: np.ndarray, highs: np.ndarray) -> None:
                """Rows ``lows <= w_sign * W a_prev + a_coef * a + d_coef * d <= highs`` for the selected neurons."""
                index = np.nonzero(select)[0]
                if index.size == 0:
                    return
                part = coo_matrix(w_sign * weight[index])
                cols = [(part.row, part.col + previous, part.data)]
                if a_coef:
                    cols.append((np.arange(index.size), a_start + index, np.full(index.size, a_coef)))
                if d_coef is not None:
                    cols.append((np.arange(index.size), d_index[index], d_coef[index]))
                r = np.concatenate([c[0] for c in cols])
                cidx = np.concatenate([c[1] for c in cols])
                data = np.concatenate([c[2] for c in cols])
                blocks.append(csr_matrix((data, (r, cidx)), shape=(index.size, total)))
                low.append(lows[index])
                high.append(highs[index])

            infinity = np.full(n, np.inf)
            row(active, -1.0, 1.0, None, bias, bias)                  # a - W a_prev = b
            row(active, 1.0, 0.0, None, -bias, infinity)               # W a_prev + b >= 0
            row(inactive, 1.0, 0.0, None, -infinity, -bias)            # W a_prev + b <= 0
            var_high[a_start:a_start + n][inactive] = 0.0
            row(free, -1.0, 1.0, None, bias, infinity)                 # a >= W a_prev + b
            row(free, -1.0, 1.0, -lo, -infinity, bias - lo)            # a <= z - l (1 - d)
            row(free, 0.0, 1.0, -up, -infinity, np.zeros(n))           # a <= u d
            largest = max(largest, float(np.abs(lo).max(initial=0)), float(np.abs(up).max(initial=0)))
        weight, bias = self.layers[-1]
        scale *= max(1.0, float(np.abs(weight).sum(1).max())) * largest
        last = int(offsets[len(pre)])
        spec = matrix @ weight
        out = csr_matrix((spec.shape[0], total))
        out = hstack([csr_matrix((spec.shape[0], last)), csr_matrix(spec),
                      csr_matrix((spec.shape[0], total - last - spec.shape[1] - 1)),
                      csr_matrix(-np.ones((spec.shape[0], 1)))]).tocsr()
        blocks.append(out)
        low.append(np.full(spec.shape[0], -np.inf))
        high.append(bound - matrix @ bias)
        c = np.zeros(total)
        c[t_index] = 1.0
        integrality = np.zeros(total)
        integrality[int(offsets[len(sizes)]):t_index] = 1
        constraints = LinearConstraint(vstack(blocks).tocsr(), np.concatenate(low), np.concatenate(high))
        return (c, constraints, Bounds(var_low, var_high), integrality), scale

