"""The topic registry: one TopicSpec per topic, each reachable by a name in streams/topics.py."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

from greencredit.streams import topics

AGENTS = Path(__file__).resolve().parents[2] / "agents"
TOPIC_LIKE = re.compile(r"greencredit\.[a-z]+(-[a-z]+)*")


def test_every_registered_topic_has_a_named_spec() -> None:
    named = {
        value.name: name
        for name, value in vars(topics).items()
        if isinstance(value, topics.TopicSpec) and name.isupper()
    }
    assert set(named) == {spec.name for spec in topics.TOPICS}
    assert all(name in topics.__all__ for name in named.values())
    assert {t.name for t in topics.AUDITED_TOPICS} == {
        "greencredit.decisions",
        "greencredit.disbursements",
    }


def _topic_literals(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            if TOPIC_LIKE.fullmatch(text) and importlib.util.find_spec(text) is None:
                found.add(text)
    return found


def test_the_agents_name_topics_only_by_their_topic_spec() -> None:
    """No topic name is a string literal in agents/: each is a TopicSpec of streams/topics.py."""
    assert _topic_literals('Outgoing("greencredit.fraud-alerts", k, r)') == {
        "greencredit.fraud-alerts"
    }  # the scan sees a literal where there is one
    assert _topic_literals('find_spec("greencredit.agents")') == set()  # a module, not a topic
    literals = {
        path.name: found
        for path in AGENTS.glob("*.py")
        if (found := _topic_literals(path.read_text()))
    }
    assert literals == {}
