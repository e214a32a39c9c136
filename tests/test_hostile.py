"""Hostile input never crashes the CLI: every command, given a missing path, an unreadable file,
an image that is not an image, results of another format version or an unknown study, exits 2
with one message and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import make_record, run_cli

from harness._leaderboard import write_row
from harness._tables import FORMAT_FILE

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
