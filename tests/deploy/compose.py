"""deploy/compose.yaml as docker-compose 1.29 resolves it (`docker-compose config`)."""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from fieldline_backend.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"


def docker_compose() -> str:
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "docker-compose is not installed; run `scripts/services.sh up` "
            "(it installs Debian's docker-compose 1.29)",
            pytrace=False,
        )
    return found


def compose_config(env_file: Path | None = ENV_EXAMPLE) -> subprocess.CompletedProcess:
    command = [docker_compose()]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    command += ["-f", str(COMPOSE_FILE), "config"]
    # No deploy/.env may leak in: a clean environment with only what compose needs.
    env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": "/tmp"}
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)


@cache
def resolved() -> dict:
    result = compose_config()
    assert result.returncode == 0, f"docker-compose config failed:\n{result.stderr}"
    return yaml.safe_load(result.stdout)


def fieldline_containers() -> dict[str, dict]:
    """The services built from the repository's Dockerfile."""
    return {
        name: service
        for name, service in resolved()["services"].items()
        if "build" in service and Path(service["build"]["context"]).resolve() == ROOT
    }


def settings_variables() -> set[str]:
    """Every FIELDLINE_* variable the code reads: derived from the Settings model."""
    prefix = Settings.model_config["env_prefix"]
    return {prefix + name.upper() for name in Settings.model_fields}


def mounts(service: dict) -> dict[str, dict]:
    """target -> {source, type, read_only} from compose 1.29's short volume syntax."""
    found = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):  # long syntax, should a later compose print it
            found[entry["target"]] = entry
            continue
        source, target, *mode = entry.split(":")
        kind = "bind" if source.startswith(("/", ".")) else "volume"
        found[target] = {
            "source": source,
            "target": target,
            "type": kind,
            "read_only": mode == ["ro"],
        }
    return found
