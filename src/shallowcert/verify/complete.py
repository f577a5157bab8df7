"""``verify``: the complete verifier, an orchestration of cheap steps first under one time limit.

1. **Falsify** (:mod:`shallowcert.verify.falsify`): the box centre and a short PGD against
   every disjunct; a re-checked counterexample answers ``sat``.
2. **Incomplete bounds** on the whole box (``method``: crown, then alpha-crown with
   optimised intermediate slopes when ``method="alpha-crown"``, the default): every
   disjunct proved above the rounding margin answers ``unsat``. The intermediate bounds
   of the last one are those branch and bound keeps. Then a longer PGD with restarts
   (:func:`shallowcert.verify.falsify.attack`, at most ``ATTACK_SHARE`` of the time) against
   the disjuncts the bounds left open.
3. **Branch and bound** (:mod:`shallowcert.verify.bab`) over ReLU splits, each subdomain
   bounded by beta-CROWN warm-started from its parent, on its parent's intermediate bounds
   refined after the new split (:mod:`shallowcert.verify.beta`), with periodic
   falsification; its fully split subdomains are settled by the MILP (an LP there).
4. **Exact MILP** (:mod:`shallowcert.verify.milp`) on the whole box when it leaves at most
   ``milp_unstable`` unstable ReLUs and branch and bound did not finish in half the time
   left: small enough for HiGHS, given the rest.

Every bound runs in float64 on ``device`` (default: the model's; branch and bound searches
its slopes and multipliers in float32, then evaluates them in float64). ``sat`` only with a
counterexample re-checked by running the network, ``unsat`` only from a bound above its
margin (or the MILP's, :mod:`shallowcert.verify.milp`); otherwise ``timeout`` (the limit
passed) or ``unknown``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch
from torch import nn

from shallowcert.model_state import model_in_dtype
from shallowcert.device import resolve_device
from shallowcert.errors import UserError
from shallowcert.verify.bab import branch_and_bound
from shallowcert.verify.beta import SplitBounder
from shallowcert.verify.falsify import Counterexample, attack, falsify
from shallowcert.verify.milp import MilpSolver
from shallowcert.verify.property import Property
from shallowcert.verify.result import Status, VerificationResult
from shallowcert.verify.subdomain import SubdomainBounder

logger = logging.getLogger(__name__)

VERIFY_METHODS = ("crown", "alpha-crown")
MILP_UNSTABLE = 48  # at most this many unstable ReLUs on the box: try the MILP (half the time) before branching
ATTACK_SHARE = 0.1  # of the time limit, at most, for the attack between the whole-box bounds and branching


def verify(model: nn.Module, prop: Property, *, timeout: float = 60.0, method: str = "alpha-crown",
           device: torch.device | str | None = None, seed: int = 0, batch: int | None = None,
           max_domains: int = 2_000_000, milp_unstable: int = MILP_UNSTABLE) -> VerificationResult:
    """Decide whether some input in ``prop``'s box reaches its unsafe set (module docstring).

    ``timeout``: seconds of wall time for the whole call (checked between steps and inside
    branch and bound's optimisation; the whole-box bounds and one MILP node finish first).
    ``method``: the whole-box bound of step 2 (``crown`` or ``alpha-crown``), whose
    intermediate bounds branch and bound keeps. ``batch``: subdomains bounded per engine call (default: what the memory budget holds);
    ``max_domains``: the branch-and-bound budget (``unknown`` beyond it).
    """
    start = time.monotonic()
    if method not in VERIFY_METHODS:
        raise UserError(f"unknown verification method '{method}' (choose from {', '.join(VERIFY_METHODS)})")
    if not timeout > 0:
        raise UserError(f"timeout must be > 0 seconds, got {timeout}")
    parameters = list(model.parameters())
    target = resolve_device(device) if device is not None else (parameters[0].device if parameters
                                                                  else torch.device("cpu"))
    network = model_in_dtype(model.to(target) if parameters and parameters[0].device != target else model,
                             torch.float64)
    network.eval()
    prop = prop.to(device=target, dtype=torch.float64)
    deadline = start + timeout
    stats: dict[str, Any] = {}

    def result(status: Status, by: str, found: Counterexample | None = None) -> VerificationResult:
        seconds = time.monotonic() - start
        logger.info("verify: %s by %s in %.2f s", status, by, seconds)
        return VerificationResult(status, seconds, by, None if found is None else found.x,
                                  None if found is None else found.output, stats)

    with torch.no_grad():
        outputs = network(prop.lower.unsqueeze(0))
    if outputs.shape[1:] != (prop.outputs,):
        raise UserError(f"the property is written over {prop.outputs} outputs, the model has {outputs.shape[1]}")
    found = falsify(network, prop, steps=30, restarts=2, seed=seed, deadline=deadline)
    if found is not None:
        return result("sat", "attack", found)
    bounder = SubdomainBounder(network, prop, method="crown")
    root = bounder.bound_domains(bounder.free_states(1))
    stats["unstable"] = int(sum(int((s == 0).sum()) for s in root.states))
    if bool(root.verified.all()):
        return result("unsat", "bounds")
    if method == "alpha-crown":
        bounder = SubdomainBounder(network, prop, method="alpha-crown")
        root = bounder.bound_domains(bounder.free_states(1))
        if bool(root.verified.all()):
            return result("unsat", "bounds")
    found = attack(network, prop, deadline=min(deadline, time.monotonic() + ATTACK_SHARE * timeout),
                   seed=seed + 1, steps=50, restarts=4, rounds=2, disjuncts=~root.proved[0])
    if found is not None:
        return result("sat", "attack", found)
    milp = MilpSolver(network, prop, bounder)
    small = stats["unstable"] <= milp_unstable and milp.available
    if time.monotonic() >= deadline:
        return result("timeout", "bounds")
    outcome = branch_and_bound(network, prop, SplitBounder(bounder, root, deadline=deadline), deadline=(
        start + (timeout + time.monotonic() - start) / 2 if small else deadline), root=root, batch=batch,
        max_domains=max_domains, exact=lambda states: milp.solve(states, deadline=deadline), seed=seed)
    stats.update(outcome.stats)
    if outcome.status in ("sat", "unsat") or not small or time.monotonic() >= deadline:
        return result(outcome.status, "bab", outcome.counterexample)
    status, found = milp.solve(root_states(root), deadline=deadline, open_disjuncts=~root.proved[0])
    stats["milp"] = status
    final: Status = ("sat" if status == "sat" else "unsat" if status == "unsat" else "timeout"
                     if time.monotonic() >= deadline else "unknown")
    return result(final, "milp", found)


def root_states(root: Any) -> tuple[torch.Tensor, ...]:
    """The ReLU states the whole-box bounds proved, for one domain (no batch dimension)."""
    return tuple(s[0] for s in root.states)

