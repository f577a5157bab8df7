"""Start-up of ``shallowcert verify``: the command imports only what it needs (no Ray,
matplotlib, scipy, torch_pruning, torch._dynamo, the onnx package or the study stages), and
the CLI still offers every command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import shallowcert
from shallowcert.cli import COMMAND_MODULES, _modules_for, build_parser

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

HEAVY = ("ray", "matplotlib", "scipy", "torch_pruning", "torch._dynamo", "onnx", "shallowcert.data",
         "shallowcert.study", "shallowcert.report", "shallowcert.training", "shallowcert.prune")

PROBE = """
import sys
from shallowcert.cli import main
code = main(sys.argv[1:])
print("LOADED", ",".join(m for m in {heavy!r} if m in sys.modules))
sys.exit(code)
"""


def _network(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(2, 3)).astype(np.float32), "w1"),
             numpy_helper.from_array(rng.normal(size=(3, 2)).astype(np.float32), "w2")]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("MatMul", ["r", "w2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    onnx_path, vnnlib = tmp_path / "net.onnx", tmp_path / "prop.vnnlib"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(onnx_path))
    vnnlib.write_text("(declare-const X_0 Real)\n(declare-const X_1 Real)\n(declare-const Y_0 Real)\n"
                      "(declare-const Y_1 Real)\n(assert (>= X_0 0.0))\n(assert (<= X_0 0.1))\n"
                      "(assert (>= X_1 0.0))\n(assert (<= X_1 0.1))\n(assert (>= Y_1 (+ Y_0 100.0)))\n")
    return onnx_path, vnnlib


def test_verify_imports_none_of_the_heavy_modules(tmp_path: Path) -> None:
    onnx_path, vnnlib = _network(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(Path(shallowcert.__file__).resolve().parents[1]), OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), "verify", "--onnx", str(onnx_path),
                           "--vnnlib", str(vnnlib), "--timeout", "10", "--device", "cpu"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "unsat"
    last = done.stdout.splitlines()[-1]
    assert last.startswith("LOADED")
    assert last.removeprefix("LOADED").strip() == "", f"verify imported {last}"


def test_only_the_named_command_is_imported_but_help_lists_all() -> None:
    assert _modules_for(["verify", "--onnx", "a.onnx"]) == ("verify",)
    assert _modules_for(["-v", "import", "--onnx", "a.onnx"]) == ("import_state_dict",)
    assert _modules_for(["robust-train"]) == ("robust_train",)
    assert _modules_for(["--help"]) == COMMAND_MODULES and _modules_for(["no-such-command"]) == COMMAND_MODULES
    commands = build_parser(["--help"])._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert set(commands) >= {"train", "verify", "import", "export-onnx", "robust-train", "study", "report"}
