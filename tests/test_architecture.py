"""The house rules of ``[tool.recops.architecture]``: layers one way, stages independent,
``serving`` free of training code, no product module over 500 lines or function over 80."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recops.app.architecture import Rules, check, modules

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def rules() -> Rules:
    return Rules.load(REPO / "pyproject.toml")


def test_the_project_keeps_every_rule(rules: Rules) -> None:
    violations = check(REPO, rules)
    assert not violations, "\n".join(str(v) for v in violations)


def test_every_product_folder_is_read(rules: Rules) -> None:
    names = {name for name, _ in modules(REPO, rules)}
    for expected in ("recops.core.settings", "recops.app.cli", "recops.training.train",
                     "recops.serving.main", "recops.ingestion.events", "recops.quality.checkpoints",
                     "dags.recops_pipeline"):
        assert expected in names


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's Python folders and pyproject.toml to break on purpose."""
    for folder in ("recops", "ingestion", "quality", "training", "serving", "dags"):
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("recops/core/warehouse.py", "from recops.training.train import TrainConfig",
         "recops.core.warehouse (layer 2) imports recops.training.train from a higher layer (1)"),
        ("serving/main.py", "from recops.training import registry",
         "recops.serving must not import recops.training"),
        ("quality/drift.py", "import recops.app.cli",
         "recops.quality.drift (layer 1) imports recops.app.cli from a higher layer (0)"),
        ("ingestion/batch.py", "from recops.quality.results import QualityResult",
         "recops.ingestion must not import recops.quality"),
    ],
)
def test_a_wrong_way_import_is_caught(project: Path, module: str, line: str, expected: str) -> None:
    path = project / module
    path.write_text(path.read_text() + f"\n{line}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "recops.app.architecture", str(project)], capture_output=True, text=True
    )
    assert proc.returncode == 1
    assert expected in proc.stdout
    assert f"{path}:" in proc.stdout


def test_oversized_module_and_function_are_caught(project: Path) -> None:
    rules = Rules.load(project / "pyproject.toml")
    body = "\n".join(f"    x{i} = {i}" for i in range(90))
    (project / "training" / "big.py").write_text(f"def huge():\n{body}\n" + "# pad\n" * 450)
    messages = [str(v) for v in check(project, rules)]
    assert any("function huge has 91 lines (limit 80)" in m for m in messages)
    assert any("recops.training.big has 541 lines (limit 500)" in m for m in messages)
