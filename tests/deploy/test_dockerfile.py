"""The Dockerfile, checked without a Docker engine: what it COPYs exists and is not
excluded by .dockerignore, the build context it copies is enough to build the wheel
(with every package pyproject lists and the `fieldline` command), its entry point is
the `fieldline` command, and its health check asks the port the image listens on."""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

from fieldline_backend.common.settings import SERVICES
from tests.deploy.compose import ROOT, fieldline_containers

DOCKERFILE = ROOT / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def copied_sources() -> list[str]:
    sources = []
    for word, rest in instructions():
        if word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources += parts[:-1]
    return sources


def ignored(path: str) -> bool:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return any(fnmatch.fnmatch(path, p) or path.split("/")[0] == p for p in patterns)


def test_every_copied_path_exists_and_is_in_the_build_context():
    sources = copied_sources()
    assert "pyproject.toml" in sources and "backend" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
        assert not ignored(source), f".dockerignore excludes {source}, which the build copies"


def test_the_entry_point_is_the_fieldline_command_and_compose_commands_fit_it():
    entrypoints = [json.loads(rest) for word, rest in instructions() if word == "ENTRYPOINT"]
    assert entrypoints == [["fieldline"]]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "fieldline" in scripts
    from fieldline_backend.cli import build_parser

    parser = build_parser()
    for name, service in fieldline_containers().items():
        args = parser.parse_args(service["command"])  # exits (fails) on an unknown command
        assert args.command in ("serve", "migrate"), name
    assert {s["command"][-1] for s in fieldline_containers().values()} >= set(SERVICES)


def test_the_health_check_asks_the_port_the_image_listens_on():
    env = " ".join(rest for word, rest in instructions() if word == "ENV")
    assert "FIELDLINE_HTTP_PORT=8000" in env and "FIELDLINE_HTTP_HOST=0.0.0.0" in env
    (health,) = [rest for word, rest in instructions() if word == "HEALTHCHECK"]
    assert "127.0.0.1:8000/healthz" in health
    assert ("EXPOSE", "8000") in instructions()
    users = [rest for word, rest in instructions() if word == "USER"]
    assert users and users[-1] != "root", "the services must not run as root"


@pytest.mark.real
def test_the_copied_context_builds_a_complete_wheel(tmp_path):
    """pip builds the project from exactly what the Dockerfile copies (PyPI for the build
    backend, as `pip install .` in the image does)."""
    context = tmp_path / "context"
    context.mkdir()
    for source in copied_sources():
        path = ROOT / source
        if path.is_dir():
            shutil.copytree(
                path,
                context / source,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        else:
            shutil.copy2(path, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("fieldline-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package in packages["packages"]:
        folder = package.replace(".", "/") + "/"  # code (__init__.py) or data (templates/)
        assert any(name.startswith(folder) for name in names), f"{package} not in the image"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "fieldline = fieldline_backend.cli:main"
        in zipfile.ZipFile(wheel).read(entry_points).decode()
    )
    assert any(n.startswith("fieldline_provision/device_app/") for n in names)
