"""Hostile input never crashes the CLI: every command, given a missing path, an unreadable file,
an image that is not an image, results of another format version or an unknown study, exits 2
with one message and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import make_record, run_cli

from harness._results.leaderboard import write_row
from harness._results.tables import FORMAT_FILE

CASES = {
    "search: missing spec": ["search", "{d}/missing.yaml", "--results", "{d}/r"],
    "search: spec not YAML": ["search", "{d}/garbage.yaml", "--results", "{d}/r"],
    "search: spec is a folder": ["search", "{d}/folder", "--results", "{d}/r"],
    "search: newer results": ["search", "{d}/digits.yaml", "--results", "{d}/newer"],
    "search: image not an image": ["search", "{d}/bad_images.yaml", "--results", "{d}/r", "--dry-run"],
    "search: missing image folder": ["search", "{d}/no_images.yaml", "--results", "{d}/r", "--dry-run"],
    "leaderboard: missing results": ["leaderboard", "--results", "{d}/missing"],
    "leaderboard: newer results": ["leaderboard", "--results", "{d}/newer"],
    "leaderboard: unknown study": ["leaderboard", "--results", "{d}/results", "--study", "nope"],
    "leaderboard: results is a file": ["leaderboard", "--results", "{d}/garbage.yaml"],
    "export: missing results": ["export", "--results", "{d}/missing", "--out", "{d}/out"],
    "export: newer results": ["export", "--results", "{d}/newer", "--out", "{d}/out"],
    "export: unknown study": ["export", "--results", "{d}/results", "--study", "nope", "--out", "{d}/out"],
    "export: unknown trial": ["export", "--results", "{d}/results", "--trial", "nope", "--out", "{d}/out"],
    "evaluate: missing results": ["evaluate", "--results", "{d}/missing"],
    "evaluate: newer results": ["evaluate", "--results", "{d}/newer"],
    "evaluate: unknown study": ["evaluate", "--results", "{d}/results", "--study", "nope"],
    "predict: missing model": ["predict", "--model", "{d}/missing", "{d}/notes.png"],
    "predict: model is a file": ["predict", "--model", "{d}/garbage.yaml", "{d}/notes.png"],
    "bench: missing suite": ["bench", "{d}/missing.yaml", "--results", "{d}/r"],
    "bench: suite not YAML": ["bench", "{d}/garbage.yaml", "--results", "{d}/r"],
    "bench: newer results": ["bench", "{d}/suite.yaml", "--results", "{d}/newer"],
    "report: missing results": ["report", "--study", "s", "--results", "{d}/missing"],
    "report: newer results": ["report", "--study", "s", "--results", "{d}/newer"],
    "report: unknown study": ["report", "--study", "nope", "--results", "{d}/results"],
    "report: unknown compared": ["report", "--study", "s", "--compare", "nope", "--results", "{d}/results"],
}


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("hostile")
    (d / "garbage.yaml").write_bytes(b"\x00\x01 study: [unclosed")
    (d / "folder").mkdir()
    (d / "notes.png").write_text("not an image")
    (d / "newer").mkdir()
    (d / "newer" / FORMAT_FILE).write_text(json.dumps({"results_format": 999}))
    write_row(d / "results", make_record("s", "t1"))
    spec = {"study": "s", "dataset": {"name": "digits"}, "search": {"trials": 1, "max_epochs": 1},
            "space": {"conv_blocks": 1}}  # fmt: skip
    (d / "digits.yaml").write_text(yaml.safe_dump(spec))
    for split in ("train", "test"):
        (d / "images" / split / "cat").mkdir(parents=True)
        (d / "images" / split / "cat" / "a.png").write_text("not an image either")
    for name, path in (("bad_images", d / "images"), ("no_images", d / "nowhere")):
        bad = {**spec, "dataset": {"name": "image_folder", "path": str(path)}}
        (d / f"{name}.yaml").write_text(yaml.safe_dump(bad))
    suite = {"name": "x", "tasks": [{"name": "a", "search": str(d / "digits.yaml")}]}
    (d / "suite.yaml").write_text(yaml.safe_dump(suite))
    return d


@pytest.mark.parametrize("case", list(CASES))
def test_every_command_answers_hostile_input_with_one_message_and_exit_2(hostile, case):
    out = run_cli(*(arg.format(d=hostile) for arg in CASES[case]), cwd=hostile)
    assert out.returncode == 2, f"{case}: exit {out.returncode}\n{out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr and out.stderr.lstrip().startswith("error:"), out.stderr[-2000:]


DIGITS = {"study": "s", "dataset": {"name": "digits"}, "search": {"trials": 1, "max_epochs": 1},
          "space": {"conv_blocks": 1}}  # fmt: skip
DUPLICATE_SPACE = "study: s\ndataset: {name: digits}\nspace: {conv_blocks: 2}\nsearch: {}\nspace: {}\n"
# case: (spec as YAML text or a change of DIGITS, extra arguments, what stderr must say)
BAD_INPUT = {
    "markup in a message": ({"study": "[/]"}, [], ["study", "'[/]'"]),
    "markup in a flag": ({}, ["--study", "x[bold]y"], ["--study", "x[bold]y"]),
    "a key given twice": (DUPLICATE_SPACE, [], ["line 5: key 'space' is given twice", "first on line 3"]),
    "per-block list too long": (
        {"space": {"conv_blocks": 2, "filters": [8, 16, 32]}}, [],
        ["filters lists 3 per-block values", "conv_blocks is at most 2"],
    ),
    "negative seed": ({"search": {"trials": 1, "seed": -1}}, [], ["search.seed", "got -1"]),
    "seed beyond 32 bits": ({"search": {"trials": 1, "seed": 2**32}}, [], ["search.seed", "4294967296"]),
    "seed flag": ({}, ["--seed", "-1"], ["--seed must be greater than or equal to 0. Received: --seed -1"]),
    "nan float": ({"dataset": {"name": "digits", "validation_split": float("nan")}}, [],
                  ["dataset.validation_split", "finite number (got nan)"]),
    "nan bound": ({"space": {"learning_rate": {"type": "float", "low": float("nan"), "high": 0.1}}}, [],
                  ["learning_rate: low must be a finite number; got nan"]),
    "nan constraint": ({"constraints": {"params": {"max": float("nan")}}}, [],
                       ["constraints.params.max", "finite number (got nan)"]),
    "huge filters": ({"space": {"filters": 10**9}}, [], ["filters", "<= 16384; got 1000000000"]),
    "huge dense units": ({"space": {"dense_units": 10**8}}, [], ["dense_units", "<= 65536; got 100000000"]),
    "huge images": ({"dataset": {"name": "digits", "image_size": [100000, 100000]}}, [],
                    ["dataset.image_size", "from 1 to 4096", "[100000, 100000]"]),
    "path on a built-in dataset": ({"dataset": {"name": "digits", "path": "elsewhere"}}, [],
                                   ["dataset.path is only for image_folder", "'elsewhere'", "--data-dir"]),
    "cpus per trial not a number": ({}, ["--cpus-per-trial", "abc"],
                                    ["--cpus-per-trial must be a positive number or auto. "
                                     "Received: --cpus-per-trial abc"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_search_input_exits_2_naming_field_and_value_and_writes_nothing(tmp_path, case):
    spec, extra, expected = BAD_INPUT[case]
    path = tmp_path / "space.yaml"
    path.write_text(spec if isinstance(spec, str) else yaml.safe_dump({**DIGITS, **spec}))
    out = run_cli("search", str(path), "--results", str(tmp_path / "r"), *extra, cwd=tmp_path)
    assert out.returncode == 2, f"{case}: exit {out.returncode}\n{out.stderr[-2000:]}"
    assert "Traceback" not in out.stderr and out.stderr.lstrip().startswith("error:"), out.stderr[-2000:]
    message = " ".join(out.stderr.split())  # the console may wrap a long message
    assert all(part in message for part in expected), message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["space.yaml"]  # no results folder


def test_predict_refuses_a_model_holding_code_without_loading_it(tmp_path):
    """A Lambda layer is Python code; Keras' safe mode refuses it, and so does harness, in one line."""
    import keras
    from PIL import Image

    layers = [keras.layers.Lambda(lambda x: x * 2.0), keras.layers.Flatten(), keras.layers.Dense(2)]
    model = keras.Sequential([keras.Input((8, 8, 1)), *layers])
    (tmp_path / "m").mkdir()
    model.save(tmp_path / "m" / "model.keras")
    card = {"input": {"shape": [8, 8, 1]}, "versions": {"backend": keras.backend.backend()},
            "dataset": {"class_names": ["a", "b"]}}  # fmt: skip
    (tmp_path / "m" / "model_card.json").write_text(json.dumps(card))
    Image.new("L", (8, 8)).save(tmp_path / "x.png")
    before = sorted(tmp_path.rglob("*"))
    out = run_cli("predict", "--model", str(tmp_path / "m"), str(tmp_path / "x.png"), cwd=tmp_path)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-2000:]  # (TensorFlow logs its start first)
    message = " ".join(out.stderr.split())
    assert f"error: --model {tmp_path / 'm'}" in message and "Lambda" in message
    assert "harness will not load arbitrary code from a model file" in message
    assert sorted(tmp_path.rglob("*")) == before
