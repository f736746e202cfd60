"""The schema catalogue: every shipped ``.avsc`` (current and historical) with its id.

Ids come from schemas/manifest.json (no registry) or from a Confluent Schema
Registry (``SCHEMA_REGISTRY_URL``). Either way the codec asks this module two
questions: "which id do I write for this schema?" and "which schema wrote this id?".
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import fastavro

from greencredit.schemas import schema_dir

from .errors import UnknownSchemaId

__all__ = [
    "ManifestSchemaIds",
    "RegistrySchemaIds",
    "SchemaCatalog",
    "SchemaIds",
    "SchemaVersion",
]


@dataclass(frozen=True)
class SchemaVersion:
    """One version of one record schema."""

    name: str  # full record name, e.g. greencredit.v1.Transaction
    version: int
    raw: dict[str, Any]  # the .avsc JSON as written
    parsed: Any  # fastavro's parsed schema


class SchemaCatalog:
    """All shipped schema versions; the newest version of each name is the reader schema."""

    def __init__(self, manifest_path: Path | None = None) -> None:
        path = manifest_path or schema_dir() / "manifest.json"
        manifest = json.loads(path.read_text(encoding="utf-8"))
        self.by_id: dict[int, SchemaVersion] = {}
        self.current: dict[str, SchemaVersion] = {}
        self.current_id: dict[str, int] = {}
        for entry in manifest["schemas"]:
            raw = json.loads((path.parent / entry["file"]).read_text(encoding="utf-8"))
            full_name = f"{raw['namespace']}.{raw['name']}"
            if full_name != entry["name"]:
                raise ValueError(f"manifest id {entry['id']}: {entry['file']} holds {full_name}")
            version = SchemaVersion(full_name, entry["version"], raw, fastavro.parse_schema(raw))
            self.by_id[entry["id"]] = version
            newest = self.current.get(full_name)
            if newest is None or version.version > newest.version:
                self.current[full_name] = version
                self.current_id[full_name] = entry["id"]

    def reader(self, name: str) -> SchemaVersion:
        """The current (reader) version of a record schema."""
        try:
            return self.current[name]
        except KeyError:
            raise UnknownSchemaId(f"no schema named {name!r} in the catalogue") from None


class SchemaIds(Protocol):
    """Where schema ids come from."""

    def id_for(self, subject: str, schema: SchemaVersion) -> int:
        """Id to write in the header for this schema under this subject."""
        ...

    def writer_schema(self, schema_id: int) -> SchemaVersion:
        """The schema that wrote `schema_id`."""
        ...


class ManifestSchemaIds:
    """Ids from schemas/manifest.json: fixed, shipped with the code, no network."""

    def __init__(self, catalog: SchemaCatalog) -> None:
        self._catalog = catalog

    def id_for(self, subject: str, schema: SchemaVersion) -> int:
        """The manifest id of the current version (subjects do not matter here)."""
        return self._catalog.current_id[schema.name]

    def writer_schema(self, schema_id: int) -> SchemaVersion:
        """Look the id up in the manifest."""
        try:
            return self._catalog.by_id[schema_id]
        except KeyError:
            raise UnknownSchemaId(
                f"schema id {schema_id} is not in schemas/manifest.json"
            ) from None


class RegistrySchemaIds:
    """Ids from a Confluent Schema Registry, registering under TopicNameStrategy subjects.

    Results are cached: a registry round trip happens once per subject and per
    unseen id, never per message.
    """

    def __init__(self, url: str, catalog: SchemaCatalog, auto_register: bool = True) -> None:
        from confluent_kafka.schema_registry import SchemaRegistryClient

        self._client = SchemaRegistryClient({"url": url})
        self._catalog = catalog
        self._auto_register = auto_register
        self._ids: dict[str, int] = {}
        self._schemas: dict[int, SchemaVersion] = {}
        self._lock = threading.Lock()

    def id_for(self, subject: str, schema: SchemaVersion) -> int:
        """Register (or look up) the schema under `subject` and return its id."""
        from confluent_kafka.schema_registry import Schema

        with self._lock:
            if subject not in self._ids:
                text = json.dumps(schema.raw)
                registry_schema = Schema(text, "AVRO")
                schema_id: int | None
                if self._auto_register:
                    schema_id = self._client.register_schema(subject, registry_schema)
                else:
                    schema_id = self._client.lookup_schema(subject, registry_schema).schema_id
                if schema_id is None:
                    raise UnknownSchemaId(f"registry returned no id for subject {subject}")
                self._ids[subject] = schema_id
                self._schemas[schema_id] = schema
            return self._ids[subject]

    def writer_schema(self, schema_id: int) -> SchemaVersion:
        """Fetch the writer schema by id (cached)."""
        with self._lock:
            cached = self._schemas.get(schema_id)
        if cached is not None:
            return cached
        try:
            fetched = self._client.get_schema(schema_id)
        except Exception as exc:  # the client raises SchemaRegistryError or HTTP errors
            raise UnknownSchemaId(f"schema id {schema_id} unknown to the registry: {exc}") from None
        if not fetched.schema_str:
            raise UnknownSchemaId(f"registry returned an empty schema for id {schema_id}")
        raw = json.loads(fetched.schema_str)
        name = f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".")
        version = SchemaVersion(name, int(raw.get("version", 0)), raw, fastavro.parse_schema(raw))
        with self._lock:
            self._schemas[schema_id] = version
        return version
