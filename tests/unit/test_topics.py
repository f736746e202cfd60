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


def test_every_topic_string_in_the_agents_is_a_registered_topic() -> None:
    """So each literal can be swapped for its TopicSpec one for one (and none is a typo)."""
    registered = {spec.name for spec in topics.TOPICS}
    literals = set()
    for path in AGENTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if TOPIC_LIKE.fullmatch(text) and importlib.util.find_spec(text) is None:
                    literals.add(text)
    assert literals, "the scan found no topic names"
    assert literals <= registered
