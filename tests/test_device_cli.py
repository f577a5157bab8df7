"""``--device`` on every command that computes: cpu gives the default's results, cuda without
CUDA and unknown names end with one error line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from conftest import make_idx_dataset
from shallowcert.cli import main

COMMANDS = ("train", "evaluate", "distill", "prune", "attack", "certify", "robust-train")
DUMMY = {  # the required arguments of each command; the device is resolved before any is used
    "train": ["--model", "snn:4", "--out", "o"],
    "evaluate": ["--model", "m"],
    "distill": ["--teacher", "t", "--student", "snn:4", "--method", "logits", "--out", "o"],
    "prune": ["--model", "m", "--out", "o"],
    "attack": ["--model", "m", "--eps", "0.1", "--out", "o"],
    "certify": ["--model", "m", "--eps", "0.1", "--out", "o"],
    "robust-train": ["--model", "snn:4", "--eps", "0.1", "--out", "o"],
}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("device, message", [("cuda", "CUDA is not available"), ("cuda:1", "CUDA is not available"),
                                             ("nonsense", "unknown device 'nonsense'")])
def test_devices_that_cannot_run_here_are_one_line_errors(command: str, device: str, message: str, capsys,
                                                          monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.chdir(tmp_path)
    assert main([command, *DUMMY[command], "--device", device]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("shallowcert: error: ") and message in err
    assert list(tmp_path.iterdir()) == []


def test_the_error_exit_of_the_real_command_line(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "shallowcert", "certify", *DUMMY["certify"], "--device", "gpu"],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == ["shallowcert: error: unknown device 'gpu' (choose auto|cpu|cuda[:N])"]


def without_timings(value: object) -> object:
    """JSON content minus wall-clock times and the run's own paths."""
    if isinstance(value, dict):
        return {k: without_timings(v) for k, v in value.items() if "seconds" not in k and k not in ("out", "model")}
    if isinstance(value, list):
        return [without_timings(v) for v in value]
    return value


def contents(path: Path) -> object:
    """JSON without timings; safetensors as metadata and raw tensor bytes (its header's key
    order varies from write to write); other files as bytes."""
    if path.suffix == ".json":
        return without_timings(json.loads(path.read_text()))
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata(), {k: handle.get_tensor(k).numpy().tobytes() for k in handle.keys()}
    return path.read_bytes()


def outputs(root: Path) -> dict[str, object]:
    """Every file written under ``root`` (figures left out)."""
    return {str(path.relative_to(root)): contents(path) for path in sorted(root.rglob("*"))
            if path.is_file() and path.suffix != ".png"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("device-cli")
    data = make_idx_dataset(root / "data", n_train=80, n_test=20)
    teacher = root / "teacher"
    assert main(["train", "--dataset", "mnist", "--data-dir", str(data), "--model",
                 "layers:c3k4s2p1,relu,flat,fc8,relu,fc", "--epochs", "1", "--out", str(teacher)]) == 0
    return data, teacher


def arguments(command: str, teacher: Path, out: Path) -> list[str]:
    return {
        "train": ["--model", "snn:6", "--epochs", "1", "--out", str(out)],
        "evaluate": ["--model", str(teacher), "--out", str(out / "evaluate.json")],
        "distill": ["--teacher", str(teacher), "--student", "snn:6", "--method", "adversarial", "--attack-steps", "2",
                    "--epochs", "1", "--cache-dir", str(out / "cache"), "--out", str(out / "student")],
        "prune": ["--model", str(teacher), "--max-drop", "0.1", "--out", str(out)],
        "attack": ["--model", str(teacher), "--eps", "0,0.05", "--steps", "3", "--out", str(out)],
        "certify": ["--model", str(teacher), "--eps", "0.01", "--radius", "--limit", "4",
                    "--out", str(out)],
        "robust-train": ["--model", "snn:6", "--eps", "0.01", "--epochs", "1", "--warmup-epochs", "1",
                         "--limit-train", "30", "--limit-val", "6", "--limit-eval", "6", "--out", str(out)],
    }[command]


@pytest.mark.parametrize("command", COMMANDS)
def test_device_cpu_gives_the_results_of_the_default(command: str, trained: tuple[Path, Path], tmp_path: Path,
                                                     capsys) -> None:
    """On this CUDA-less machine ``auto`` is the CPU: the same numbers, byte for byte."""
    data, teacher = trained
    dataset = ["--dataset", "mnist", "--data-dir", str(data)]
    (tmp_path / "default").mkdir()
    (tmp_path / "cpu").mkdir()
    assert main([command, *dataset, *arguments(command, teacher, tmp_path / "default" / "out")]) == 0
    assert main([command, *dataset, *arguments(command, teacher, tmp_path / "cpu" / "out"), "--device", "cpu"]) == 0
    default, cpu = outputs(tmp_path / "default"), outputs(tmp_path / "cpu")
    assert default and default == cpu
