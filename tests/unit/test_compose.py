"""docker-compose.yml and the image: what can be checked without a Docker engine."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from greencredit.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def test_services_and_dependencies_are_consistent():
    assert {"kafka", "schema-registry", "redis", "topics", "worker"} <= set(SERVICES)
    for name, service in SERVICES.items():
        for dependency, rule in (service.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{dependency} has no healthcheck"
            else:
                assert condition == "service_completed_successfully"


def test_worker_scales_and_is_checked():
    worker = SERVICES["worker"]
    assert "container_name" not in worker and "ports" not in worker  # --scale worker=N
    assert worker["command"] == ["greencredit", "worker"]
    assert worker["healthcheck"]["test"][1:] == ["greencredit", "health"]
    assert worker["depends_on"]["topics"]["condition"] == "service_completed_successfully"


def test_engine_environment_names_real_settings():
    env = SERVICES["worker"]["environment"]
    fields = {name.upper() for name in Settings.model_fields}
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    assert set(env) <= fields | aliases, set(env) - fields - aliases
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["REDIS_URL"].startswith("redis://redis:")
    assert env["SCHEMA_REGISTRY_URL"] == "http://schema-registry:8081"


def test_commands_used_by_compose_exist():
    for args in (["worker", "--help"], ["health", "--help"], ["topics", "create", "--help"]):
        run = subprocess.run(
            [sys.executable, "-m", "greencredit", *args], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, run.stderr


def test_image_copies_every_package_folder():
    dockerfile = (ROOT / "infra" / "docker" / "Dockerfile").read_text()
    build = SERVICES["topics"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).exists()
    for folder in ("greencredit", "streams", "agents", "schemas", "models", "infra"):
        assert f"COPY {folder} ./{folder}" in dockerfile
    assert "constraints.txt" in dockerfile
