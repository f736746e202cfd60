"""The greencredit/<folder> symlinks resolve, and the installed package imports through them."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINKED = ("agents", "infra", "models", "schemas", "streams")


@pytest.mark.parametrize("folder", LINKED)
def test_link_resolves_to_the_top_level_folder(folder: str) -> None:
    link = ROOT / "greencredit" / folder
    assert link.is_symlink(), f"greencredit/{folder} should be a symlink"
    # Relative, so the link survives a clone into any directory.
    assert str(link.readlink()) == f"../{folder}"
    assert link.resolve() == (ROOT / folder).resolve()
    assert (link / "__init__.py").is_file()


@pytest.mark.parametrize("folder", LINKED)
def test_package_modules_are_the_top_level_files(folder: str) -> None:
    module = importlib.import_module(f"greencredit.{folder}")
    assert module.__file__ is not None
    assert Path(module.__file__).resolve() == (ROOT / folder / "__init__.py").resolve()


def test_the_installed_package_imports_through_the_links(tmp_path: Path) -> None:
    # Outside the repository, nothing but the editable install puts greencredit on sys.path.
    probe = (
        "import importlib, json\n"
        "import greencredit.models.green, greencredit.agents.engine, greencredit.infra.embedded\n"
        "import greencredit.streams.topics, greencredit.schemas\n"
        "files = {n: importlib.import_module('greencredit.' + n).__file__ for n in %r}\n"
        "try:\n"
        "    import models\n"
        "    bare = True\n"
        "except ImportError:\n"
        "    bare = False\n"
        "print(json.dumps({'files': files, 'bare': bare}))\n"
    ).replace("%r", repr(LINKED))
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    seen = json.loads(done.stdout)
    for folder, file in seen["files"].items():
        assert Path(file).resolve() == (ROOT / folder / "__init__.py").resolve()
    assert not seen["bare"], "the folders must have one import name: greencredit.<folder>"
