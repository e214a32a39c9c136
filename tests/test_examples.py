"""Every script in `examples/` runs as a user runs it (a fresh process, its own working folder)
and prints what it promises: the examples in the docs cannot rot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytestmark = pytest.mark.slow


def run_example(name: str, cwd: Path) -> str:
    """The example's output; it must exit 0."""
    command = ["bash"] if name.endswith(".sh") else [sys.executable]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run([*command, str(EXAMPLES / name)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900, check=False)  # fmt: skip
    assert done.returncode == 0, (
        f"{name} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout


def test_every_example_is_tested():
    tested = {"first_search.py", "export_and_predict.py", "first_search.sh", "own_data.py", "own_model.py",
              "multi_objective.py"}  # fmt: skip
    assert {p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".sh")} == tested


def test_the_first_search_then_its_export_and_predictions(tmp_path):
    out = run_example("first_search.py", tmp_path)
    assert "best of 4 trials" in out and "val_accuracy" in out
    out = run_example("export_and_predict.py", tmp_path)
    assert "verified: True" in out and (tmp_path / "exported" / "best" / "model.keras").is_file()
    assert out.count("digit_") == 3  # one prediction per image


def test_the_first_search_from_the_command_line(tmp_path):
    out = run_example("first_search.sh", tmp_path)
    assert "zero.png" in out and (tmp_path / "best" / "model_card.json").is_file()


def test_own_data_carves_a_test_set_from_string_labelled_arrays(tmp_path):
    out = run_example("own_data.py", tmp_path)
    assert "test_accuracy" in out and "(test: 20% of train, carved)" in out


def test_own_model_rows_have_the_model_s_hyperparameters(tmp_path):
    out = run_example("own_model.py", tmp_path)
    assert "hp_blocks" in out and "hp_learning_rate" in out and "parameters" in out


def test_multi_objective_prints_the_pareto_front(tmp_path):
    out = run_example("multi_objective.py", tmp_path)
    lines = [line for line in out.splitlines() if "parameters" in line]
    assert lines and all(int(line.split(" with ")[1].split()[0].replace(",", "")) <= 50_000 for line in lines)
