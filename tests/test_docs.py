"""The documentation: the site builds with warnings as errors, the getting-started page's commands run as written
against the shared data, and no example names a path the demo does not create."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
GETTING_STARTED = DOCS / "getting-started.md"
WRITTEN_DATA = "../shared/data"
"""How the pages name the sample data; the tests put the real folder (ECGLENS_DATA) in its place."""
DEMO_MADE = ("run/best", "cache100", "report.html", "report.json", "records", "explain", "robustness", "evaluation")
"""What ``ecglens demo --out DIR`` creates under DIR."""


def _blocks(page: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", page.read_text(), flags=re.S)


def _installs(block: str) -> bool:
    """The set-up block (a new virtual environment and pip): run by a newcomer, not by the tests."""
    return "pip install" in block or "python3 -m venv" in block


def test_the_site_builds_strict(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    result = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "getting-started" / "index.html").is_file()
    assert "load_bundle" in (tmp_path / "site" / "reference" / "index.html").read_text()  # the API reference


def test_the_getting_started_page_has_commands_to_run():
    shell = [block for block in _blocks(GETTING_STARTED, "bash") if not _installs(block)]
    assert len(shell) >= 3 and len(_blocks(GETTING_STARTED, "python")) >= 1
    assert all(WRITTEN_DATA in block or "demo" in block for block in shell)


@pytest.mark.slow
@pytest.mark.realdata
def test_the_getting_started_commands_run_as_written(shared_data, tmp_path):
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    for block in _blocks(GETTING_STARTED, "bash"):
        if _installs(block):
            continue
        for line in filter(None, (line.strip() for line in block.splitlines())):
            command = line.replace(WRITTEN_DATA, str(shared_data))
            run = subprocess.run(
                ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            assert run.returncode == 0, f"{line}\n{run.stderr[-2000:]}"
    assert (tmp_path / "ecglens-out" / "predict" / "predictions.jsonl").is_file()
    assert list((tmp_path / "ecglens-out" / "predict-338" / "figures").glob("*.png"))
    assert (tmp_path / "ecglens-out" / "demo-small" / "report.html").is_file()
    for block in _blocks(GETTING_STARTED, "python"):
        run = subprocess.run(
            [sys.executable, "-c", block.replace(WRITTEN_DATA, str(shared_data))],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr[-2000:]
        assert '"probabilities"' in run.stdout


def _examples() -> dict[str, str]:
    """Every page and help text a user reads examples in."""
    texts = {str(p.relative_to(REPO_ROOT)): p.read_text() for p in [REPO_ROOT / "README.md", *DOCS.glob("*.md")]}
    texts["src/ecglens/cli.py"] = (REPO_ROOT / "src" / "ecglens" / "cli.py").read_text()
    return texts


def test_no_example_names_a_path_the_demo_does_not_create():
    wrong = []
    for where, text in _examples().items():
        wrong += [f"{where}: {m}" for m in re.findall(r"\b(?:runs|caches)/demo\b\S*", text)]
        for made in re.findall(r"ecglens-out/demo/([\w./-]+)", text):
            if not made.rstrip(".").startswith(DEMO_MADE):
                wrong.append(f"{where}: ecglens-out/demo/{made}")
    assert wrong == []


def test_the_demo_creates_what_the_examples_name():
    """`DEMO_MADE` is what `run_demo` writes (checked against its source, so a renamed folder fails here)."""
    source = (REPO_ROOT / "src" / "ecglens" / "studies" / "demo.py").read_text()
    for name in ('"run"', '"records"', '"explain"', '"robustness"', '"evaluation"', '"report.html"', "cache"):
        assert name in source, name


def test_ci_runs_the_readmes_test_command_and_every_other_tier():
    readme = REPO_ROOT / "README.md"
    (tests,) = [block for block in _blocks(readme, "bash") if "pytest" in block and "pip install" in block]
    command = tests[tests.index("python -m pytest") :].strip()
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert command in ci  # the README's test command, as written
    assert 'python -m pytest -q -m "slow or browser"' in ci  # and the tiers it leaves out
    assert "not slow and not browser" in command  # the fast tier a developer runs on every change
