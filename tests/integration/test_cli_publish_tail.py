"""`greencredit publish` and `tail` as a user runs them, against a real embedded broker."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from greencredit.infra.endpoints import Endpoints
from greencredit.streams.jsonform import to_json_form
from tests.factories import application
from tests.integration.conftest import publish_raw

CLI = [sys.executable, "-m", "greencredit"]
TOPIC = "greencredit.loan-applications"
PII_FIELDS = ("id_card_number", "phone", "email", "bank_card_number")


@pytest.fixture
def env(fresh_stack: Endpoints, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": fresh_stack.kafka,
        "REDIS_URL": fresh_stack.redis,
        "GREENCREDIT_STATE_DIR": str(tmp_path / "state"),
    }


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(CLI + args, env=env, capture_output=True, text=True, timeout=120)


def write_jsonl(path: Path, events: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(to_json_form(None, e)) + "\n" for e in events))
    return path


def tail(env: dict[str, str], *extra: str) -> list[dict[str, Any]]:
    result = run(["tail", TOPIC, *extra], env)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def raw_pii(events: list[dict[str, Any]]) -> list[str]:
    return [e["applicant"][field] for e in events for field in PII_FIELDS]


def test_publish_then_tail_back_masked_then_refuse_an_invalid_file(env, tmp_path):
    first = [application(n) for n in range(1000, 1005)]
    published = run(["publish", TOPIC, str(write_jsonl(tmp_path / "ok.jsonl", first))], env)
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout) == {"topic": TOPIC, "published": len(first)}

    lines = tail(env)
    events = [line["event"] for line in lines if "event" in line]
    assert sorted(e["event_id"] for e in events) == sorted(e["event_id"] for e in first)
    printed = "\n".join(json.dumps(line) for line in lines)
    for value in raw_pii(first):
        assert value not in printed
    by_id = {e["event_id"]: e for e in events}
    for event in first:
        phone = by_id[event["event_id"]]["applicant"]["phone"]
        assert phone == event["applicant"]["phone"][:3] + "****" + event["applicant"]["phone"][-4:]

    # One bad record among good ones: the command refuses the file and sends none of it.
    second = [application(n) for n in range(2000, 2004)]
    bad = write_jsonl(tmp_path / "bad.jsonl", second)
    rows = bad.read_text().splitlines()
    broken = json.loads(rows[2])
    broken["applicant"]["phone"] = None
    rows[2] = json.dumps(broken)
    bad.write_text("\n".join(rows) + "\n")
    refused = run(["publish", TOPIC, str(bad)], env)
    assert refused.returncode == 2
    assert f"{bad}:3: applicant.phone: expected string, got null" in refused.stderr
    assert "nothing was published" in refused.stderr
    after = [line["event"]["event_id"] for line in tail(env) if "event" in line]
    assert sorted(after) == sorted(e["event_id"] for e in first)
    for value in raw_pii(second):
        assert value not in refused.stdout + refused.stderr

    # Limits and the starting point.
    assert len(tail(env, "--limit", "2")) == 2
    assert tail(env, "--from-end") == []


def test_a_message_that_does_not_decode_is_an_error_line(env, fresh_stack):
    publish_raw(fresh_stack, TOPIC, b'{"phone": "13912345678"}', key=b"poison")
    lines = tail(env)
    errors = [line for line in lines if "error" in line]
    assert [e["error"]["type"] for e in errors] == ["BadMagicByte"]
    assert "13912345678" not in json.dumps(lines)


class _Follower:
    """`greencredit tail ARGS` running in the background, its stdout lines in a queue."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
            # The suite runs as a background job (`make test &`), which ignores Ctrl-C and
            # would pass that on: a user's terminal does not. A handled signal is reset to
            # its default in the child, whose Python then turns Ctrl-C into KeyboardInterrupt.
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self.proc = subprocess.Popen(
            [*CLI, "tail", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next_event(self, wanted: str) -> dict[str, Any]:
        while True:
            line = json.loads(self.lines.get(timeout=60))
            if line.get("event", {}).get("event_id") == wanted:
                return line

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, as a user stops it: (exit code, stderr)."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        return code, self.proc.stderr.read() if self.proc.stderr else ""

    def __enter__(self) -> _Follower:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def test_follow_prints_new_events_and_stops_cleanly_on_sigint(env, tmp_path):
    before, later = application(3000), application(3001)
    first = run(["publish", TOPIC, str(write_jsonl(tmp_path / "a.jsonl", [before]))], env)
    assert first.returncode == 0, first.stderr
    with _Follower([TOPIC, "--follow", "--from-beginning"], env) as follower:
        # Seeing an old event proves the follower is reading before the new one is sent.
        follower.next_event(before["event_id"])
        sent = run(["publish", TOPIC, str(write_jsonl(tmp_path / "b.jsonl", [later]))], env)
        assert sent.returncode == 0, sent.stderr
        line = follower.next_event(later["event_id"])
        assert line["event"]["applicant"]["phone"] != later["applicant"]["phone"]
        assert follower.proc.poll() is None  # the end of the topic did not stop it
        code, stderr = follower.interrupt()
    assert code == 0, stderr
    assert "Traceback" not in stderr


def test_follow_from_the_end_shows_only_what_arrives_after_it_started(env, tmp_path):
    old = application(3010)
    first = run(["publish", TOPIC, str(write_jsonl(tmp_path / "old.jsonl", [old]))], env)
    assert first.returncode == 0, first.stderr
    sent: list[str] = []
    printed: list[dict[str, Any]] = []
    # --follow starts at the end by default.
    with _Follower([TOPIC, "--follow"], env) as follower:
        # The follower's position is fixed once it joins, which this test cannot see:
        # keep sending new events until the first one comes out.
        for n in range(30):
            new = application(3020 + n)
            batch = write_jsonl(tmp_path / f"new-{n}.jsonl", [new])
            assert run(["publish", TOPIC, str(batch)], env).returncode == 0
            sent.append(new["event_id"])
            with contextlib.suppress(queue.Empty):
                printed.append(json.loads(follower.lines.get(timeout=2)))
                break
        assert printed, "nothing printed after 30 new events"
        code, _ = follower.interrupt()
        while not follower.lines.empty():
            printed.append(json.loads(follower.lines.get()))
    assert code == 0
    ids = [line["event"]["event_id"] for line in printed]
    assert old["event_id"] not in ids  # published before the follower started
    assert ids and set(ids) <= set(sent)
