"""The HTML report: built from a real small search, every section present, every image decodes."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess

import pytest
from conftest import SMALL_SPACE, run_cli
from PIL import Image

from harness import load_leaderboard, load_spec, run_search
from harness._reports.report import SECTIONS, _baselines

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(tmp_path_factory, local_ray):
    """A digits search and a baseline of the same dataset, in one results folder."""
    import yaml

    root = tmp_path_factory.mktemp("report")
    search = {"study": "rs", "dataset": {"name": "digits", "validation_split": 0.2},
              "search": {"trials": 5, "max_epochs": 3, "sampler": "random", "seed": 0, "probe": False,
                         "scheduler": {"name": "none"}},
              "resources": {"cpus_per_trial": 1}, "space": SMALL_SPACE}  # fmt: skip
    baseline = {**search, "study": "rs_baseline", "search": {**search["search"], "trials": 1},
                "space": {k: v for k, v in SMALL_SPACE.items() if not isinstance(v, dict)} | {
                    "conv_blocks": 1, "filters": 8, "learning_rate": 0.005}}  # fmt: skip
    for spec in (search, baseline):
        (root / f"{spec['study']}.yaml").write_text(yaml.safe_dump(spec))
        run_search(load_spec(root / f"{spec['study']}.yaml"), results_dir=root / "r")
    return root / "r"


def _images(page: str) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(data)))
            for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]  # fmt: skip


def test_the_report_holds_every_section_and_each_image_decodes(results, tmp_path):
    out = run_cli("report", "--results", str(results), "--study", "rs", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    page = (tmp_path / "report-rs.html").read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    images = _images(page)
    assert len(images) >= 6  # anytime, learning, pareto, slice, confusion, misclassified
    for image in images:
        image.load()
        assert image.size[0] > 100 and image.size[1] > 100
    assert not re.search(r'(src|href)="https?:', page)  # nothing fetched: opens offline
    figures = re.findall(r'<figure><img alt="([^"]+)" src=[^>]+><figcaption>([^<]+)</figcaption>', page)
    assert len(figures) == len(images)  # each figure says what it is, to a reader and a screen reader
    assert all(alt == caption and len(alt.split()) > 5 for alt, caption in figures)
    assert "<h3>Confusion matrix</h3>" in page
    baselines = _baselines(load_leaderboard(results), "digits", exclude=["rs"])
    assert baselines.keys() == {"rs_baseline"}  # its line is drawn


def test_compare_puts_studies_side_by_side(results, tmp_path):
    out = run_cli("report", "--results", str(results), "--study", "rs", "--compare", "rs_baseline",
                  "--out", str(tmp_path))  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    page = (tmp_path / "report-rs.html").read_text()
    compare = page.split('<section id="compare">')[1].split("</section>")[0]
    assert "rs_baseline" in compare and "rs" in compare


def test_an_unknown_study_is_an_argument_error(results, tmp_path):
    out = run_cli("report", "--results", str(results), "--study", "nope", "--out", str(tmp_path))
    assert out.returncode == 2 and "--study must name a study with rows" in out.stderr


@pytest.mark.skipif(not (shutil.which("chromium") or shutil.which("chromium-browser")),
                    reason="no chromium here (Debian: apt install chromium)")  # fmt: skip
def test_the_report_renders_in_a_headless_browser(results, tmp_path):
    run_cli("report", "--results", str(results), "--study", "rs", "--out", str(tmp_path))
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1200,2000", f"file://{tmp_path / 'report-rs.html'}"],
                   check=True, timeout=120, capture_output=True)  # fmt: skip
    image = Image.open(shot).convert("L")
    assert image.getextrema()[0] < 200  # not blank: something dark was drawn
