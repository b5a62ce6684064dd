"""The wheel must contain every package folder: each folder with an __init__.py is in the mapping."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
PACKAGE_DIR: dict[str, str] = SETUPTOOLS["package-dir"]
LAYOUT = ("agents", "envs", "perception", "memory", "policies", "deploy")
NOT_PACKAGES = {"tests", "benchmarks", "docs", "scripts", "runs", "data", "build", "dist"}


def _package_folders() -> set[Path]:
    """Every folder holding an __init__.py, outside tests, tooling, build output and hidden folders."""
    folders = set()
    for top in ROOT.iterdir():
        if not top.is_dir() or top.name in NOT_PACKAGES or top.name.startswith(".") or top.name.endswith(".egg-info"):
            continue
        for init in top.rglob("__init__.py"):
            folders.add(init.parent.relative_to(ROOT))
    return folders


def test_user_layout_exists():
    for folder in (*LAYOUT, "tests"):
        assert (ROOT / folder).is_dir(), f"{folder}/ is part of the requested layout"
    assert (ROOT / "pyproject.toml").is_file()


def test_every_package_folder_is_mapped():
    mapped_dirs = {Path(d) for d in PACKAGE_DIR.values()}
    missing = sorted(str(f) for f in _package_folders() if f not in mapped_dirs)
    assert not missing, f"package folders missing from [tool.setuptools.package-dir]: {missing}"


def test_mapping_is_consistent():
    packages = set(SETUPTOOLS["packages"])
    assert packages == set(PACKAGE_DIR), "[tool.setuptools] packages and package-dir must list the same packages"
    for package, folder in PACKAGE_DIR.items():
        assert (ROOT / folder / "__init__.py").is_file(), f"{package} maps to {folder}/, which has no __init__.py"
        if package != "cortico":
            parent, _, leaf = package.rpartition(".")
            assert parent in PACKAGE_DIR, f"{package}'s parent package {parent} is not mapped"
    for folder in LAYOUT:
        assert PACKAGE_DIR.get(f"cortico.{folder}") == folder


@pytest.mark.parametrize("package", sorted(PACKAGE_DIR))
def test_package_imports_from_its_folder(package):
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == (ROOT / PACKAGE_DIR[package]).resolve()


def test_console_script_runs():
    script = shutil.which("cortico") or str(Path(sys.executable).parent / "cortico")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cortico ")
