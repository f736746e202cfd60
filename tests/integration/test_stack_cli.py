"""`greencredit stack up --json` / `status` / `down` as a user runs them, in a fresh state dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import redis
from confluent_kafka.admin import AdminClient

from greencredit.streams.topics import TOPICS

CLI = [sys.executable, "-m", "greencredit"]


def _run(args, env):
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=120)


def _pid_running(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    if not status.exists():
        return False
    return "State:\tZ" not in status.read_text()


def test_stack_up_status_down(tmp_path):
    external = ("KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in external}
    env["GREENCREDIT_STATE_DIR"] = str(tmp_path / "state")
    up = _run(["stack", "up", "--json"], env)
    assert up.returncode == 0, up.stderr
    addresses = json.loads(up.stdout)
    assert set(addresses) == {"kafka", "redis", "postgres"}
    assert addresses["postgres"].startswith("postgresql+asyncpg://postgres:")
    assert "@127.0.0.1:" in addresses["postgres"]
    assert addresses["kafka"].startswith("127.0.0.1:")
    assert addresses["redis"].startswith("redis://127.0.0.1:")
    try:
        client = redis.Redis.from_url(addresses["redis"])
        assert client.ping()
        client.close()
        topics = (
            AdminClient({"bootstrap.servers": addresses["kafka"]}).list_topics(timeout=10).topics
        )
        assert {t.name for t in TOPICS} <= set(topics)

        again = _run(["stack", "up", "--json"], env)  # idempotent: same stack
        assert json.loads(again.stdout) == addresses

        status = _run(["stack", "status"], env)
        assert status.returncode == 0
        pids = [p["pid"] for p in json.loads(status.stdout)["processes"]]
        assert len(pids) == 3 and all(_pid_running(pid) for pid in pids)
        users = _run(["users", "list"], env)  # the console's database is reachable and migrated
        assert users.returncode == 0, users.stderr
        assert json.loads(users.stdout) == []  # no default user
    finally:
        down = _run(["stack", "down"], env)
    assert down.returncode == 0, down.stderr
    assert len(json.loads(down.stdout)["stopped"]) == 3
    assert not any(_pid_running(pid) for pid in pids)
    assert _run(["stack", "status"], env).returncode == 1


def test_external_servers_start_nothing(tmp_path, stack):
    env = dict(os.environ)
    env["GREENCREDIT_STATE_DIR"] = str(tmp_path / "state")
    env["KAFKA_BOOTSTRAP_SERVERS"] = stack.kafka
    env["REDIS_URL"] = stack.redis
    env["DATABASE_URL"] = "postgresql://console:secret@db.example:5432/greencredit"
    up = _run(["stack", "up", "--json"], env)
    assert up.returncode == 0, up.stderr
    assert json.loads(up.stdout) == {
        "kafka": stack.kafka,
        "redis": stack.redis,
        "postgres": env["DATABASE_URL"],
    }
    down = _run(["stack", "down"], env)
    assert json.loads(down.stdout)["stopped"] == []
