"""The contract files: every schema parses, is documented, has the envelope, and an example."""

from __future__ import annotations

import json

import fastavro
import pytest

from greencredit.schemas import examples_dir, history_dir, schema_dir
from greencredit.streams.catalog import SchemaCatalog
from greencredit.streams.topics import TOPICS

SCHEMA_FILES = sorted(schema_dir().glob("*.avsc")) + sorted(history_dir().glob("*.avsc"))
ENVELOPE = ["event_id", "tenant_id", "occurred_at", "schema_version"]


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_schema_parses_and_has_the_envelope(path):
    raw = json.loads(path.read_text())
    fastavro.parse_schema(raw)
    assert [f["name"] for f in raw["fields"][:4]] == ENVELOPE
    occurred = raw["fields"][2]["type"]
    assert occurred == {"type": "long", "logicalType": "timestamp-millis"}


def _fields(schema):
    if isinstance(schema, dict) and schema.get("type") == "record":
        for field in schema["fields"]:
            yield schema["name"], field
            yield from _fields(field["type"])
    elif isinstance(schema, dict) and schema.get("type") == "array":
        yield from _fields(schema["items"])
    elif isinstance(schema, list):
        for branch in schema:
            yield from _fields(branch)


@pytest.mark.parametrize("path", SCHEMA_FILES, ids=lambda p: p.name)
def test_every_field_is_documented(path):
    raw = json.loads(path.read_text())
    assert raw.get("doc")
    undocumented = [f"{rec}.{f['name']}" for rec, f in _fields(raw) if not f.get("doc")]
    assert undocumented == []


def test_every_current_schema_has_an_example_and_a_topic():
    stems = {p.stem for p in schema_dir().glob("*.avsc")}
    assert stems == {p.stem for p in examples_dir().glob("*.json")}
    catalog = SchemaCatalog()
    assert {t.schema for t in TOPICS} == set(catalog.current)


def test_manifest_ids_are_unique_and_point_at_files():
    manifest = json.loads((schema_dir() / "manifest.json").read_text())
    ids = [entry["id"] for entry in manifest["schemas"]]
    assert len(ids) == len(set(ids))
    listed = {entry["file"] for entry in manifest["schemas"]}
    on_disk = {p.name for p in schema_dir().glob("*.avsc")} | {
        f"history/{p.name}" for p in history_dir().glob("*.avsc")
    }
    assert listed == on_disk


def test_output_schemas_carry_no_raw_pii_fields():
    pii = {"id_card_number", "bank_card_number", "card_number", "phone", "email", "full_name"}
    for spec in TOPICS:
        if spec.direction != "output":
            continue
        raw = SchemaCatalog().reader(spec.schema).raw
        names = {f["name"] for _, f in _fields(raw)}
        assert not names & pii, spec.name
