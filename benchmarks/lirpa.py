"""shallowcert beside auto_LiRPA 0.7.1: bounds and certified training steps, in one run.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/lirpa.py --normal DIR --robust DIR [--quick] [--output JSON]

On a shared machine set ``OMP_WAIT_POLICY=PASSIVE`` (both processes inherit it): with OpenMP's
default spinning, a 2-thread step here took 9.6 s instead of 0.57 s while other jobs held the
cores (cert-teacher CROWN-IBP, load average 9 on 2 cores).

auto_LiRPA runs in its own environment (``--peer-python``, default ``/work/lirpa-venv/bin/python``)
as a worker process (``benchmarks/lirpa_peer.py``) that lives for the whole run; both sides get
the same model weights, points, radius, dtype (float32), batch and thread count, and their
repeats alternate (ours, theirs, ours, ...) so that both see the same machine load. ``uptime``
load averages are recorded with every section. Times are the median of the repeats, wall clock
and CPU time of the process (the steadier one on a loaded machine); speed-ups are ratios of both.

* **Training steps** (batch 64 of Fashion-MNIST training points, ε = 0.1, random
  initialisation of cert-teacher and wong-small, Adam lr 1e-3, 1 and 2 threads): CROWN-IBP and
  CROWN (``bound_opts`` ``compare_crown_with_ibp``, the choice our CROWN makes). CROWN-IBP: 3
  alternating rounds of 1 + 8 steps per library, the first step of each round untimed on both
  sides (the steady state of training); CROWN: one step. The first and the last step's losses
  are compared (same weights, same batch).
* **Bounds** (the first 1,000 Fashion-MNIST test points, ε = 0.1, margin rows of the true
  label, batches of ``--batch``, 1 and 2 threads) on wong-small trained normally (``--normal``)
  and robustly (``--robust``): IBP, CROWN-IBP, CROWN and α-CROWN (200 points; auto_LiRPA at its
  defaults: 20 steps, lr 0.5 decaying by 0.98 a step, ``fix_interm_bounds``; ours at its defaults,
  intermediate slopes optimised too, with the same steps and lr: on the first 30 points of the
  robust net, ours final-only was lower than auto_LiRPA's on 146 of 270 margins, by up to 0.02,
  with the intermediate slopes higher on 7 and lower on 1, by 0.0009). CROWN is also compared
  where both make the same choices: auto_LiRPA with sparse intermediate bounds and
  ``compare_crown_with_ibp`` against our default (interval-proved stable neurons fixed, every
  intermediate bound intersected with its interval bound), and without both
  against ours without interval arithmetic. In a batch, auto_LiRPA back-substitutes a neuron for
  every point if it is unstable for any one of them (``get_unstable_locations`` merges the batch),
  so a point's bound depends on its batch-mates: neurons that interval arithmetic proves stable for
  this point get back-substituted values, which only matter through later interval arithmetic. The
  ``CROWN (batch 1)`` row (both libraries one point per call, agreement only) removes that, and
  the ``CROWN (active tightened)`` row bounds every interval-proved active neuron for every point
  (``tighten_active``): never looser than auto_LiRPA's, whatever the batch; ``CROWN (undecided
  tightened)`` does so only for the points the plain bound leaves undecided (every margin positive
  at the centre, some bound not), the certificate a robust error bound needs.

Prints one Markdown table and writes ``--output`` (default ``benchmarks/results/lirpa.json``).
``--quick``: 100 points, 1 thread, fewer repeats, no CROWN training (for development).
``--only ROW ...``: only these bound rows on the robust net (e.g. ``CROWN``; ``training`` for the
training section), for a run that leaves out the half hour of the alpha-CROWN rows.
``--bound-threads 2``: the bound rows at 2 threads only (the training rows keep ``--threads``).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast
from pathlib import Path

import torch
from torch import nn

from shallowcert.atomic import write_json
from shallowcert.bounds import InputSet, lower_bounds, margin_spec
from shallowcert.bounds.engine import BoundOptions, relaxed_bound
from shallowcert.bounds.backward import concretize
from shallowcert.bounds.network import read_network
from shallowcert.data import load_dataset
from shallowcert.models import build, load_model
from shallowcert.robust.loss import robust_loss

LOG = logging.getLogger("lirpa")
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "lirpa.json"
EPS = 0.1
TRAIN_BATCH = 64
OURS = {"IBP": "ibp", "CROWN-IBP": "crown-ibp", "CROWN": "crown", "alpha-CROWN": "alpha-crown",
        "CROWN (no interval)": "crown", "CROWN (batch 1)": "crown", "CROWN (active tightened)": "crown",
        "CROWN (undecided tightened)": "crown"}
PEER_OPTIONS: dict[str, dict] = {  # auto_LiRPA bound_opts per row
    "CROWN": {"compare_crown_with_ibp": True},
    "CROWN (batch 1)": {"compare_crown_with_ibp": True},
    "CROWN (active tightened)": {"compare_crown_with_ibp": True},
    "CROWN (undecided tightened)": {"compare_crown_with_ibp": True},
    "CROWN (no interval)": {"sparse_intermediate_bounds": False},
}
ROW_OPTIONS: dict[str, dict] = {  # our lower_bounds options per row
    "alpha-CROWN": {"alpha_steps": 20, "alpha_lr": 0.5},  # auto_LiRPA's steps and learning rate
    "CROWN (active tightened)": {"tighten_active": True},
    "CROWN (undecided tightened)": {"tighten_active": "undecided"},
}


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def layers_of(model: nn.Sequential) -> list[list]:
    """The peer's description of ``model`` (``lirpa_peer.build``)."""
    layers: list[list] = []
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            layers.append(["conv", layer.in_channels, layer.out_channels, layer.kernel_size[0], layer.stride[0],
                           layer.padding[0]])
        elif isinstance(layer, nn.MaxPool2d):
            layers.append(["maxpool", layer.kernel_size, layer.stride, layer.padding])
        elif isinstance(layer, nn.Linear):
            layers.append(["linear", layer.in_features, layer.out_features])
        elif isinstance(layer, nn.ReLU):
            layers.append(["relu"])
        elif isinstance(layer, nn.Flatten):
            layers.append(["flatten"])
        else:
            raise ValueError(f"the peer cannot rebuild {type(layer).__name__}")
    return layers


class Peer:
    """The auto_LiRPA worker process: one task file in, one result file out."""

    def __init__(self, python: str, directory: Path) -> None:
        self.directory, self.count = directory, 0
        self.process = subprocess.Popen([python, str(HERE / "lirpa_peer.py")], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)

    def run(self, task: dict) -> dict:
        self.count += 1
        path = self.directory / f"task-{self.count}.pt"
        torch.save(task, path)
        self.process.stdin.write(f"{path}\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if not answer:
            raise RuntimeError("the auto_LiRPA worker stopped (see its error output above)")
        return torch.load(answer, weights_only=True)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


@dataclass(frozen=True)
class Data:
    x: torch.Tensor
    labels: torch.Tensor

    def spec(self, classes: int = 10) -> torch.Tensor:
        return margin_spec(self.labels, classes).to(self.x.dtype)

    def head(self, n: int) -> Data:
        return Data(self.x[:n], self.labels[:n])


def _median_ratio(ours: list[float], theirs: list[float]) -> tuple[float, float, float]:
    a, b = statistics.median(ours), statistics.median(theirs)
    return a, b, b / a


class Clock:
    """Wall and CPU (this process) seconds of each timed run."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def time(self, run: Callable[[], object]) -> object:
        start, start_cpu = time.perf_counter(), time.process_time()
        value = run()
        self.wall.append(time.perf_counter() - start)
        self.cpu.append(time.process_time() - start_cpu)
        return value


def our_bounds(model: nn.Sequential, data: Data, row: str, batch: int) -> torch.Tensor:
    """Our lower bounds for the benchmark row ``row`` in batches of ``batch`` points."""
    parts = []
    for begin in range(0, len(data.x), batch):
        x, spec = data.x[begin:begin + batch], data.spec()[begin:begin + batch]
        input_set = InputSet(x, torch.full((len(x),), EPS), domain=None)
        if row == "CROWN (no interval)":
            parts.append(_uninterval_crown(model, input_set, spec))
        else:
            parts.append(lower_bounds(model, input_set, spec, method=OURS[row], **ROW_OPTIONS.get(row, {})))
    return torch.cat(parts)


def _uninterval_crown(model: nn.Sequential, input_set: InputSet, spec: torch.Tensor) -> torch.Tensor:
    """CROWN with every neuron bounded by back-substitution alone (no interval shortcuts)."""
    network = read_network(model, tuple(input_set.center.shape[1:]), input_set.center.dtype)
    lower, upper = input_set.box()
    bound, _ = relaxed_bound(network, spec, lower, upper, BoundOptions("crown", interval=False))
    return concretize(bound.coefficients, (upper + lower) / 2, (upper - lower) / 2)[0] + bound.offset_lower


def compare_bounds(peer: Peer, model_name: str, model: nn.Sequential, data: Data, row: str, threads: int,
                   batch: int, repeats: int) -> dict:
    task = {"kind": "bounds", "layers": layers_of(model), "state": model.state_dict(), "x": data.x,
            "spec": data.spec(), "eps": EPS, "method": row.split(" (")[0], "bound_opts": PEER_OPTIONS.get(row, {}),
            "batch": batch, "repeats": 1, "threads": threads}
    clock, theirs_wall, theirs_cpu, ours, theirs = Clock(), [], [], None, None
    torch.set_num_threads(threads)
    for _ in range(repeats):
        with torch.no_grad():
            ours = clock.time(lambda: our_bounds(model, data, row, batch))
        result = peer.run(task)
        theirs_wall += result["seconds"]
        theirs_cpu += result["cpu_seconds"]
        theirs = result["lower"]
    a, b, ratio = _median_ratio(clock.wall, theirs_wall)
    cpu_a, cpu_b, cpu_ratio = _median_ratio(clock.cpu, theirs_cpu)
    difference = ours - theirs
    tolerance = 1e-4 * (1 + theirs.abs())
    LOG.info("%s %s bounds, %d points, %d threads: ours %.2f s, theirs %.2f s", model_name, row, len(data.x),
             threads, a, b)
    return {"row": row, "threads": threads, "points": len(data.x), "ours_s": a, "theirs_s": b, "speedup": ratio,
            "ours_cpu_s": cpu_a, "theirs_cpu_s": cpu_b, "cpu_speedup": cpu_ratio,
            "ours_robust_error_bound": _robust_error(model, data, ours),
            "theirs_robust_error_bound": _robust_error(model, data, theirs),
            "ours_mean_bound": float(ours.mean()), "theirs_mean_bound": float(theirs.mean()),
            "max_abs_difference": float(difference.abs().max()),
            "max_relative_difference": float((difference.abs() / (1 + theirs.abs())).max()),
            "margins_higher": int((difference > tolerance).sum()), "margins_lower": int((difference < -tolerance).sum())}


def _robust_error(model: nn.Sequential, data: Data, bounds: torch.Tensor) -> float:
    with torch.no_grad():
        correct = model(data.x).argmax(1) == data.labels
    return float(1 - (correct & (bounds > 0).all(1)).float().mean())


def compare_training(peer: Peer, spec_name: str, data: Data, method: str, threads: int, steps: int,
                     rounds: int, warmup: int) -> dict:
    """``rounds`` alternating rounds (ours, theirs) of ``warmup + steps`` steps each from the same
    initial weights; the first ``warmup`` steps of every round, on both sides, are not timed (the
    first step of a fresh model and optimiser pays for allocations and kernel set-up: 2-4x a later
    step for auto_LiRPA here)."""
    torch.manual_seed(0)
    initial = build(spec_name, (1, 28, 28), 10)
    clock, theirs_wall, theirs_cpu, losses = Clock(), [], [], {}
    torch.set_num_threads(threads)
    for round_index in range(rounds):
        model = build(spec_name, (1, 28, 28), 10)
        model.load_state_dict(initial.state_dict())
        our_losses = _our_steps(model, data, OURS[method], warmup, steps, clock)
        task = {"kind": "train", "layers": layers_of(initial), "state": initial.state_dict(), "x": data.x,
                "spec": data.spec(), "eps": EPS, "method": method, "bound_opts": PEER_OPTIONS.get(method, {}),
                "steps": warmup + steps, "threads": threads}
        result = peer.run(task)
        theirs_wall += result["seconds"][warmup:]
        theirs_cpu += result["cpu_seconds"][warmup:]
        if round_index == 0:
            losses = {"ours": our_losses, "theirs": result["losses"]}
    a, b, ratio = _median_ratio(clock.wall, theirs_wall)
    cpu_a, cpu_b, cpu_ratio = _median_ratio(clock.cpu, theirs_cpu)
    LOG.info("%s %s training, %d threads: ours %.3f s, theirs %.3f s per step; first losses %.6f, %.6f", spec_name,
             method, threads, a, b, losses["ours"][0], losses["theirs"][0])
    return {"network": spec_name, "method": method, "threads": threads, "batch": len(data.x),
            "timed_steps": len(clock.wall), "warmup_steps_per_round": warmup,
            "ours_ms_per_example": 1000 * a / len(data.x), "theirs_ms_per_example": 1000 * b / len(data.x),
            "speedup": ratio, "ours_cpu_ms_per_example": 1000 * cpu_a / len(data.x),
            "theirs_cpu_ms_per_example": 1000 * cpu_b / len(data.x), "cpu_speedup": cpu_ratio,
            "first_loss_ours": losses["ours"][0], "first_loss_theirs": losses["theirs"][0],
            "first_loss_difference": abs(losses["ours"][0] - losses["theirs"][0]),
            "last_loss_difference": abs(losses["ours"][-1] - losses["theirs"][-1])}


def _our_steps(model: nn.Sequential, data: Data, method: str, warmup: int, steps: int, clock: Clock) -> list[float]:
    """The losses of ``warmup + steps`` steps; only the last ``steps`` are timed."""
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> float:
        optimiser.zero_grad()
        loss = robust_loss(model, data.x, data.labels, EPS, method=method).loss
        loss.backward()
        optimiser.step()
        return float(loss.detach())

    return [step() for _ in range(warmup)] + [cast(float, clock.time(step)) for _ in range(steps)]


def _bound_plan(args: argparse.Namespace, scale: int) -> list[tuple[str, str, int, int, int]]:
    """``(model, row, points, repeats, batch)`` of every bound comparison: the robust net (the one the
    speed goals are stated for) on every row; the normal net, whose ReLUs are mostly unstable at
    eps 0.1 (CROWN costs about 15x more there), on fewer points; the rows without interval
    arithmetic (equality checks only, every neuron bounded) and CROWN at batch 1 on ``--equality-points``."""
    points, alpha, equality = args.points // scale, args.alpha_points // scale, args.equality_points // scale
    normal = args.normal_points // scale
    repeats = 1 if args.quick else args.repeats
    rows = [("wong-small robust", "IBP", points, repeats), ("wong-small robust", "CROWN-IBP", points, repeats),
            ("wong-small robust", "CROWN", points, repeats),
            ("wong-small robust", "CROWN (active tightened)", points, 1),
            ("wong-small robust", "CROWN (undecided tightened)", points, repeats),
            ("wong-small robust", "alpha-CROWN", alpha, 1),
            ("wong-small robust", "CROWN (no interval)", equality, 1),
            ("wong-small normal", "IBP", points, repeats), ("wong-small normal", "CROWN-IBP", points, repeats),
            ("wong-small normal", "CROWN", normal, 1), ("wong-small normal", "CROWN (no interval)", equality, 1)]
    return [(model, row, count, times, min(args.batch, count)) for model, row, count, times in rows] + [
        ("wong-small robust", "CROWN (batch 1)", equality, 1, 1)]


def _section(name: str, run: Callable[[], list[dict]]) -> dict:
    before = uptime()
    rows = run()
    return {"section": name, "uptime_before": before, "uptime_after": uptime(), "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--normal", required=True, help="wong-small model directory, normally trained")
    parser.add_argument("--robust", required=True, help="wong-small model directory, trained robustly at eps 0.1")
    parser.add_argument("--peer-python", default="/work/lirpa-venv/bin/python")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--alpha-points", type=int, default=200)
    parser.add_argument("--batch", type=int, default=250, help="points per bound call, both libraries")
    parser.add_argument("--normal-points", type=int, default=200, help="CROWN points on the normal net")
    parser.add_argument("--equality-points", type=int, default=100, help="points of the no-interval and batch-1 rows")
    parser.add_argument("--repeats", type=int, default=2, help="repeats of the cheaper bound rows")
    parser.add_argument("--quick", action="store_true", help="small sizes, one thread (development)")
    parser.add_argument("--only", nargs="+", metavar="ROW", help="only these robust-net bound rows ('training': "
                        "the training section)")
    parser.add_argument("--threads", type=int, nargs="+", choices=(1, 2), help="thread counts (default 1 and 2; "
                        "1 with --quick)")
    parser.add_argument("--bound-threads", type=int, nargs="+", choices=(1, 2), help="thread counts of the bound "
                        "rows (default: --threads; 2 alone leaves out auto_LiRPA's one-thread alpha-CROWN, "
                        "half an hour or more here)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    threads = tuple(args.threads or ((1,) if args.quick else (1, 2)))
    bound_threads = tuple(args.bound_threads or threads)
    scale = 20 if args.quick else 1
    dataset = load_dataset("fashion-mnist")
    test, train = dataset.test.head(args.points // scale), dataset.train.head(TRAIN_BATCH)
    data = Data(test.floats(), test.labels)
    batch = Data(train.floats(), train.labels)
    models = {"wong-small normal": load_model(args.normal).model.eval(),
              "wong-small robust": load_model(args.robust).model.eval()}
    plan = _bound_plan(args, scale)
    unknown = sorted(set(args.only or ()) - {entry[1] for entry in plan} - {"training"})
    if unknown:
        parser.error(f"--only: unknown rows {', '.join(unknown)} (rows: training, "
                     f"{', '.join(dict.fromkeys(entry[1] for entry in plan))})")
    if args.only:
        plan = [entry for entry in plan if entry[0] == "wong-small robust" and entry[1] in args.only]
    with tempfile.TemporaryDirectory() as directory:
        peer = Peer(args.peer_python, Path(directory))
        try:
            sections = []
            if not args.only or "training" in args.only:
                sections.append(_section("training", lambda: [
                    compare_training(peer, name, batch, method, t, steps=steps, rounds=rounds, warmup=warmup)
                    for method, steps, rounds, warmup in (("CROWN-IBP", 3 if args.quick else 8, 1 if args.quick else 3, 1),
                                                          *(() if args.quick else (("CROWN", 1, 1, 0),)))
                    for name in ("cert-teacher", "wong-small") for t in threads]))
            sections.append(_section("bounds", lambda: [
                {"model": label, **compare_bounds(peer, label, models[label], data.head(points), row, t, size, repeats)}
                for label, row, points, repeats, size in plan for t in bound_threads]))
        finally:
            peer.close()
    result = {"omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "only": args.only, "eps": EPS, "dtype": "float32",
              "threads": list(threads), "bound_threads": list(bound_threads), "batch": args.batch, "train_batch": TRAIN_BATCH,
              "python": sys.version.split()[0], "torch": torch.__version__, "sections": sections}
    write_json(args.output, result)
    _print(sections)
    print(f"wrote {args.output}")


def _print(sections: list[dict]) -> None:
    print("| what | network | threads | shallowcert | auto_LiRPA | speed-up | agreement |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for section in sections:
        for row in section["rows"]:
            if section["section"] == "training":
                print(f"| {row['method']} training step | {row['network']} | {row['threads']} | "
                      f"{row['ours_ms_per_example']:.2f} ms/ex | {row['theirs_ms_per_example']:.2f} ms/ex | "
                      f"{row['speedup']:.2f}x (CPU {row['cpu_speedup']:.2f}x) | first loss differs by "
                      f"{row['first_loss_difference']:.1e} |")
            else:
                print(f"| {row['row']} bounds, {row['points']} points | {row['model']} | {row['threads']} | "
                      f"{row['ours_s']:.2f} s | {row['theirs_s']:.2f} s | {row['speedup']:.1f}x "
                      f"(CPU {row['cpu_speedup']:.1f}x) | robust error "
                      f"{row['ours_robust_error_bound']:.3f} vs {row['theirs_robust_error_bound']:.3f}, max diff "
                      f"{row['max_abs_difference']:.1e} (relative {row['max_relative_difference']:.1e}), higher {row['margins_higher']} / lower "
                      f"{row['margins_lower']} |")
        print(f"| load | {section['section']} | | {section['uptime_before']} | {section['uptime_after']} | | |")


if __name__ == "__main__":
    main()
