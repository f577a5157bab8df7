"""CROWN on a max-pool network beside auto_LiRPA's CROWN: robust error bound and speed.

    python benchmarks/maxpool.py --model DIR [--points 500] [--eps E] [--threads 1] [--batch 25]
        [--repeats 1] [--output JSON] [--peer-python /work/lirpa-venv/bin/python]

The model (``teacher-svhn`` trained on Fashion-MNIST, say) is bounded on the first ``points``
test points, float64, one L-inf radius ``eps`` without domain clipping, on the margin rows of
the true label (a misclassified point is never certified): by shallowcert's ``crown`` and, in
the same run, by auto_LiRPA 0.7.1's ``CROWN`` (its worker ``lirpa_peer.py`` in its own
environment: the package never imports it), with the same weights, points, dtype, batch of
``batch`` points and thread count, repeats alternating (ours, theirs, ...). Times are the
median of the repeats; ``uptime`` is recorded before and after. Prints a Markdown table and
writes ``--output`` (default ``benchmarks/results/maxpool.json``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from lirpa import Data, Peer, layers_of, uptime
from shallowcert.atomic import write_json
from shallowcert.bounds import InputSet, lower_bounds
from shallowcert.data import load_dataset, to_float
from shallowcert.models import load_model

RESULTS = Path(__file__).resolve().parent / "results" / "maxpool.json"


def _ours(model: torch.nn.Sequential, data: Data, eps: float, batch: int) -> torch.Tensor:
    parts = []
    for begin in range(0, len(data.x), batch):
        x = data.x[begin:begin + batch]
        input_set = InputSet(x, torch.full((len(x),), eps, dtype=x.dtype), domain=None)
        parts.append(lower_bounds(model, input_set, data.spec()[begin:begin + batch], method="crown"))
    return torch.cat(parts)


def _certified(bounds: torch.Tensor) -> torch.Tensor:
    return (bounds > 0).all(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory (safetensors + JSON spec)")
    parser.add_argument("--points", type=int, default=500)
    parser.add_argument("--eps", type=float, default=0.002)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--peer-python", default="/work/lirpa-venv/bin/python")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model)
    model = loaded.model.eval().double()
    test = load_dataset("fashion-mnist").test.head(args.points)
    data = Data(to_float(test.images).double(), test.labels)
    task = {"kind": "bounds", "layers": layers_of(model), "state": model.state_dict(), "x": data.x,
            "spec": data.spec(), "eps": args.eps, "method": "CROWN", "bound_opts": {}, "batch": args.batch,
            "repeats": 1, "threads": args.threads}
    load_before = uptime()
    ours_s, theirs_s = [], []
    with tempfile.TemporaryDirectory() as scratch:
        peer = Peer(args.peer_python, Path(scratch))
        try:
            for _ in range(args.repeats):
                start = time.perf_counter()
                with torch.no_grad():
                    ours = _ours(model, data, args.eps, args.batch)
                ours_s.append(time.perf_counter() - start)
                result = peer.run(task)
                theirs_s.append(result["seconds"][0])
                theirs = result["lower"].to(torch.float64)
        finally:
            peer.close()
    load_after = uptime()
    with torch.no_grad():
        accuracy = float((model(data.x).argmax(1) == data.labels).double().mean())
    ours_time, theirs_time = statistics.median(ours_s), statistics.median(theirs_s)
    tolerance = 1e-9 * (1 + theirs.abs())
    rows = [{"method": name, "ms_per_point": 1000 * seconds / len(data.x),
             "certified": float(_certified(bounds).double().mean()),
             "robust_error_bound": float(1 - _certified(bounds).double().mean()), "mean_bound": float(bounds.mean())}
            for name, bounds, seconds in (("shallowcert crown", ours, ours_time),
                                          ("auto_LiRPA 0.7.1 CROWN", theirs, theirs_time))]
    summary = {
        "model": str(args.model), "architecture": loaded.spec, "points": len(data.x), "eps": args.eps,
        "dtype": "float64", "threads": args.threads, "batch": args.batch, "repeats": args.repeats, "domain": None,
        "clean_accuracy": accuracy, "rows": rows, "speedup": theirs_time / ours_time,
        "margins": ours.numel(), "margins_tighter": int((ours > theirs + tolerance).sum()),
        "margins_looser": int((ours < theirs - tolerance).sum()),
        "max_looser_by": float((theirs - ours).clamp(min=0).max()),
        "certified_only_by_ours": int((_certified(ours) & ~_certified(theirs)).sum()),
        "certified_only_by_auto_lirpa": int((_certified(theirs) & ~_certified(ours)).sum()),
        "uptime_before": load_before, "uptime_after": load_after,
    }
    write_json(args.output, summary)
    print(f"{args.model} ({loaded.spec}): {len(data.x)} Fashion-MNIST test points (clean accuracy {accuracy:.2%}), "
          f"eps={args.eps}, float64, {args.threads} thread(s), batch {args.batch}, no domain clipping\n"
          f"before: {load_before}\nafter:  {load_after}\n")
    print("| method | ms / point | certified | robust error bound | mean bound |\n| --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['method']} | {row['ms_per_point']:.1f} | {row['certified']:.2%} | "
              f"{row['robust_error_bound']:.2%} | {row['mean_bound']:.4f} |")
    print(f"\nours {summary['speedup']:.2f}x auto_LiRPA's speed; margins tighter {summary['margins_tighter']}, "
          f"looser {summary['margins_looser']} of {summary['margins']} (by at most {summary['max_looser_by']:.2e})")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
