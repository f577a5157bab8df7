"""The certification engine: lower bounds of ``C · f(x)`` over L-inf balls (ReLU and max-pool networks).

Public API::

    InputSet(center, eps, domain=(0.0, 1.0))   # {x : |x - c|_inf <= eps[n]} ∩ [lo, hi]^d
    margin_spec(labels, classes)               # rows e_y - e_j, j != y: (N, classes-1, classes)
    lower_bounds(model, input_set, spec=None, *, method="dual", alpha_steps=20, alpha_lr=0.1,
                 memory_budget=None)
        -> (N, K) lower bounds of spec @ f(x) over the set
    linear_lower_bound(model, input_set, spec=None, *, method="dual", ...)
        -> (lam (N, K, d), offset (N, K)) with spec @ f(x) >= offset + lam · x on the set
    linear_certificate(model, input_set, spec=None, *, method="dual", known_states=None, ...)
        -> LinearCertificate(coefficients, offset, states): the same, and the ReLU states it
           proved; pass them as known_states on any subset (a smaller radius) to skip work
    METHODS = ("ibp", "dual", "dual-exact", "crown", "alpha-crown", "crown-ibp")

The layer API for the complete verifier (:mod:`shallowcert.verify`), which splits neurons
and bounds each subdomain with the same relaxation::

    read_network(model, input_shape, dtype, *, device=None) -> Network   # affine maps, ReLUs, max pools
    as_relu(step), as_affine(step)              # a step of a Network, of the kind the caller knows
    AffineMap                                   # one affine layer of a Network
    relaxed_bound(network, spec, lower, upper, options: BoundOptions, known=None)
        -> (linear bound of spec · f over the box [lower, upper], pre-activation bounds)
    states_of(bounds) -> ReLU states proved by pre-activation bounds
    pool_relaxations(network, bounds, box) -> the max pools' lines from ReLU input bounds
    relax, unstable_mask, with_lower_slopes     # the ReLU relaxation lines
    Relaxation                                  # their slopes and intercepts, per neuron
    Relaxations                                 # ReLU and max-pool relaxations by step index
    back_substitute, concretize                 # one backward pass, and its bound over the box
    LinearBound                                 # what a backward pass returns
    packed(mask)                                # the True columns of each row first (padded rows)
    ProjectedAdam                               # the optimiser of the alpha (and beta) slopes

All methods share one backward linear-relaxation engine (they differ in the lower ReLU
slope; max pools have their own lines, :mod:`shallowcert.bounds.maxpool`). ``dual`` is Wong & Kolter's dual with interval-proved stable neurons fixed (and every
intermediate bound intersected with its interval bound): sound, tighter per neuron, and on
IBP-trained networks higher than convex_adversarial's on most margins, not on all.
``dual-exact`` equals convex_adversarial 0.4.4's ``DualNetwork`` (with
``bounded_input=True`` when ``domain=(0, 1)``). Work happens in ``center.dtype``; the
model's parameters are cast internally and gradients flow back to them. Points are processed
in chunks that fit ``memory_budget`` bytes (default ``chunks.MEMORY_BUDGET`` = 1 GiB; with
autograd each chunk is checkpointed), so any batch size runs in bounded memory.

Where the time goes, and what is skipped (modules in parentheses): a neuron that interval
arithmetic proves stable is never bounded again, except by ``dual-exact`` (``intermediate``); convolutional layers are
bounded per neuron on windows, dense layers as padded rows, whichever holds fewer values
(``plan``, ``patches``); a dense dual row stops at the first earlier ReLU where the relaxed
network's boxes prove its sign (``screen``); states proved on a larger ball are reused on a
smaller one (``known_states``).

The radius-search shortcut: ``linear_lower_bound`` at radius ``R`` gives, for every
``eps' <= R`` without domain clipping, the sound row bound ``offset + lam · center -
eps' * ||lam||_1`` (intermediate bounds valid for ``R`` stay valid for smaller balls), so
one evaluation certifies every ``eps' < min(R, (offset + lam · center) / ||lam||_1)``.
"""

from shallowcert.bounds.adam import ProjectedAdam
from shallowcert.bounds.affine import AffineMap
from shallowcert.bounds.backward import LinearBound, back_substitute, concretize
from shallowcert.bounds.engine import (ALPHA_STEPS, METHODS, BoundOptions, LinearCertificate, linear_certificate,
                                       linear_lower_bound, lower_bounds, relaxed_bound)
from shallowcert.bounds.input_set import InputSet
from shallowcert.bounds.intermediate import Relaxations, pool_relaxations, states_of
from shallowcert.bounds.network import Network, as_affine, as_relu, read_network
from shallowcert.bounds.relaxation import Relaxation, relax, unstable_mask, with_lower_slopes
from shallowcert.bounds.screen import packed
from shallowcert.bounds.spec import margin_spec

__all__ = ["ALPHA_STEPS", "METHODS", "AffineMap", "BoundOptions", "InputSet", "LinearBound", "LinearCertificate",
           "Network", "ProjectedAdam", "Relaxation", "Relaxations", "as_affine", "as_relu", "back_substitute",
           "concretize", "linear_certificate", "linear_lower_bound", "lower_bounds", "margin_spec", "packed",
           "pool_relaxations", "read_network", "relax", "relaxed_bound", "states_of", "unstable_mask",
           "with_lower_slopes"]
