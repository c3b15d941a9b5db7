"""The architecture, checked: the import-linter contracts, inference free of training code at run time, a thin
CLI, and library imports without side effects."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "src" / "ecglens"


def _python(code: str, **env: str) -> str:
    import os

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**os.environ, **env}
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_linter_contracts_are_kept():
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([executable, "--no-cache"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 4 kept, 0 broken." in result.stdout


@pytest.mark.slow
def test_reading_a_bundle_and_scoring_a_record_load_no_torch_dataset():
    loaded = _python(
        "import sys, ecglens.bundle.weights, ecglens.predict, ecglens.explain.records\n"
        "print(sorted(m for m in sys.modules if m == 'ecglens.data.dataset'))"
    )
    assert loaded == "[]"


@pytest.mark.slow
def test_inference_loads_no_training_code():
    loaded = _python(
        "import sys, ecglens.predict, ecglens.explain.records, ecglens.explain.faithfulness, "
        "ecglens.explain.population\n"
        "print(sorted(m for m in sys.modules if m.startswith('ecglens.train')))"
    )
    assert loaded == "[]"


@pytest.mark.slow
def test_the_inference_commands_load_no_training_code():
    loaded = _python(
        "import sys, ecglens.commands.explain, ecglens.commands.predict, ecglens.serve.app\n"
        "print(sorted(m for m in sys.modules if m.startswith('ecglens.train')))"
    )
    assert loaded == "[]"


def test_the_package_api_is_lazy():
    assert _python("import sys, ecglens; print('torch' in sys.modules, ecglens.__version__)") == "False 0.1.0"
    assert _python("import ecglens; print(ecglens.load_bundle.__module__)") == "ecglens.predict"


def test_library_imports_do_not_switch_the_matplotlib_backend():
    code = "import matplotlib, ecglens.report.ecgpaper, ecglens.report.figures; print(matplotlib.get_backend())"
    assert _python(code, MPLBACKEND="svg") == "svg"


_WRITERS = {
    "open",
    "write_text",
    "write_bytes",
    "to_csv",
    "to_parquet",
    "savefig",
    "save",
    "savez",
    "savez_compressed",
    "mkdir",
    "dump",
    "tofile",
}


def test_the_cli_writes_no_files():
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    names = {getattr(func, "attr", getattr(func, "id", None)) for func in calls}
    assert not names & _WRITERS, names & _WRITERS


def test_help_loads_no_heavy_library():
    loaded = _python(
        "import sys; from ecglens.cli import main; main(['--help']); main(['predict', '--help']); "
        "print(sorted(m for m in ('pandas', 'wfdb', 'scipy', 'torch', 'matplotlib', 'numpy') "
        "if m in sys.modules))"
    )
    assert loaded.splitlines()[-1] == "[]"


def test_the_light_commands_load_neither_torch_nor_matplotlib():
    loaded = _python(
        "import sys; from ecglens.cli import main\n"
        "for argv in (['--help'], ['models'], ['data', 'download', '--help'], ['data', 'label-spaces'],\n"
        "             ['models', '--card', 'starter']):\n"
        "    assert main(argv) == 0, argv\n"
        "print(sorted(m for m in ('torch', 'matplotlib', 'captum') if m in sys.modules))"
    )
    assert loaded.splitlines()[-1] == "[]"


def _functions(root: Path) -> list[tuple[int, str]]:
    """(lines, where) of every function under ``root``, longest first: from ``def`` to its last line, its
    docstring left out (documentation is not length)."""
    spans = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                first = node.body[0]
                if (
                    isinstance(first, ast.Expr)
                    and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)
                ):
                    lines -= first.end_lineno - first.lineno + 1
                spans.append((lines, f"{path.relative_to(root.parent)}:{node.lineno} {node.name}"))
    return sorted(spans, reverse=True)


def test_no_function_is_longer_than_60_lines_without_its_docstring():
    longest = _functions(PACKAGE)
    print("longest functions:", *(f"{n:4d} {where}" for n, where in longest[:10]), sep="\n")
    assert [where for n, where in longest if n > 60] == []


def test_the_folders_show_the_stages():
    flat = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert len(flat) <= 13, flat
    for stage in (
        "util",
        "io",
        "labels",
        "synth",
        "data",
        "models",
        "train",
        "explain",
        "report",
        "studies",
        "serve",
        "commands",
    ):
        assert (PACKAGE / stage / "__init__.py").is_file(), stage
