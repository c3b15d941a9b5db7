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

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_import_linter_contracts_are_kept():
    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if executable is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    result = subprocess.run([executable, "--no-cache"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_reading_a_bundle_and_scoring_a_record_load_no_torch_dataset():
    loaded = _python("import sys, ecglens.bundle, ecglens.predict, ecglens.explain.records\n"
                     "print(sorted(m for m in sys.modules if m == 'ecglens.data.dataset'))")
    assert loaded == "[]"


def test_inference_loads_no_training_code():
    loaded = _python("import sys, ecglens.predict, ecglens.explain.records, ecglens.explain.faithfulness, "
                     "ecglens.explain.population\n"
                     "print(sorted(m for m in sys.modules if m.startswith('ecglens.train')))")
    assert loaded == "[]"


def test_the_inference_commands_load_no_training_code():
    loaded = _python("import sys, ecglens.workflows, ecglens.serve.app\n"
                     "print(sorted(m for m in sys.modules if m.startswith('ecglens.train')))")
    assert loaded == "[]"


def test_the_package_api_is_lazy():
    assert _python("import sys, ecglens; print('torch' in sys.modules, ecglens.__version__)") == "False 0.1.0"
    assert _python("import ecglens; print(ecglens.load_bundle.__module__)") == "ecglens.predict"


def test_library_imports_do_not_switch_the_matplotlib_backend():
    code = "import matplotlib, ecglens.report.ecgpaper, ecglens.report.figures; print(matplotlib.get_backend())"
    assert _python(code, MPLBACKEND="svg") == "svg"


_WRITERS = {"open", "write_text", "write_bytes", "to_csv", "to_parquet", "savefig", "save", "savez",
            "savez_compressed", "mkdir", "dump", "tofile"}


def test_the_cli_writes_no_files():
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    calls = [node.func for node in ast.walk(tree) if isinstance(node, ast.Call)]
    names = {getattr(func, "attr", getattr(func, "id", None)) for func in calls}
    assert not names & _WRITERS, names & _WRITERS


def test_help_loads_no_heavy_library():
    loaded = _python("import sys; from ecglens.cli import main; main(['--help']); main(['predict', '--help']); "
                     "print(sorted(m for m in ('pandas', 'wfdb', 'scipy', 'torch', 'matplotlib', 'numpy') "
                     "if m in sys.modules))")
    assert loaded.splitlines()[-1] == "[]"
