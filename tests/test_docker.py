"""docker/: the compose file validates with Compose itself, and the image installs what CI installs.

No Docker engine is needed: ``docker compose config`` only reads and resolves the file. The
Compose v2 plugin is used when the docker client has it, else the standalone
``docker-compose``; the test skips only when neither exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker" / "docker-compose.yml"
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer"}


def _compose_command() -> list[str]:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        return [standalone]
    if docker:
        pytest.skip("the docker client has no compose plugin and docker-compose is not installed")
    pytest.skip("the docker client is not installed")


def _config(*args: str, env: dict[str, str] | None = None) -> str:
    command = [*_compose_command(), "-f", str(COMPOSE_FILE), *args, "config"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "AIRFLOW_", "NEWSFLOW_"))}
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**clean, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _services(config: str, profile: str | None = None) -> set[str]:
    """Service names in ``config`` output that run with ``profile`` active.

    Compose v2 leaves inactive profiles' services out of ``config``; the standalone v1 prints
    every service, so services whose ``profiles`` do not include ``profile`` are dropped here.
    """
    block = ("\n" + config).split("\nservices:\n", 1)[1]
    block = re.split(r"\n(?=\S)", block, maxsplit=1)[0]
    services = re.split(r"^  ([a-z0-9-]+):\n", block, flags=re.MULTILINE)[1:]
    active = set()
    for name, body in zip(services[::2], services[1::2], strict=True):
        profiles = re.search(r"^    profiles:\n((?:[ ]+- .*\n?)+)", body, re.MULTILINE)
        if profiles is None or (profile and f"- {profile}" in profiles.group(1)):
            active.add(name)
    return active


def test_compose_config_local_executor():
    config = _config()
    assert _services(config) == {"postgres", *AIRFLOW_SERVICES}
    assert "image: postgres:16" in config
    assert "postgres-data:/var/lib/postgresql/data" in config
    assert "AIRFLOW__CORE__EXECUTOR: LocalExecutor" in config
    assert "AIRFLOW_CONN_NEWSFLOW_DB: postgresql://newsflow:" in config


def test_compose_config_celery_profile():
    config = _config("--profile", "celery", env={"AIRFLOW_EXECUTOR": "CeleryExecutor"})
    assert _services(config, "celery") == {"postgres", "redis", "celery-worker", *AIRFLOW_SERVICES}
    assert "AIRFLOW__CORE__EXECUTOR: LocalExecutor" not in config
    assert "AIRFLOW__CELERY__BROKER_URL: redis://redis:6379/0" in config


def test_image_installs_what_ci_installs():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install ".[airflow]"' in dockerfile
    assert "pip install -e '.[dev]'" in ci
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert '"newsflow[airflow]"' in pyproject.split("\ndev = [", 1)[1].split("\n]", 1)[0]
    assert "load_model('en_core_web_sm')" in dockerfile  # the build fails without the model
