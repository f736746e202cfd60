"""aiohttp routes of the fraud-ops console: static pages and the JSON API behind them.

Pages are plain HTML with small vanilla scripts (no build, no CDN); every value reaches the
page through the JSON API and is inserted as text, never as HTML. The Content-Security-
Policy allows only this origin's own scripts and styles, and POSTs must be JSON (a
cross-site form cannot send that without a CORS preflight, which is never granted).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from greencredit.streams.jsonform import to_json_form
from greencredit.streams.masking import scrub_text

from .cases import SEVERITIES, SUBJECT_LABELS, Case, InvalidLabel
from .lenders import JudgementsRefused, StaleVersion, judgement_report
from .service import CaseNotFound, ConsoleService, LabelConflict, PublishFailed
from .typology import TYPOLOGIES

__all__ = ["ANALYST_HEADER", "SERVICE", "STATIC_DIR", "build_app"]

log = logging.getLogger(__name__)

SERVICE = web.AppKey("service", ConsoleService)
STATIC_DIR = Path(__file__).with_name("static")
PAGES_DIR = Path(__file__).with_name("pages")  # HTML bodies, rendered into pages/layout.html
ANALYST_HEADER = "X-Analyst-Id"
"""Set by an authenticating proxy; wins over the page's analyst-id field."""

_MAX_BODY = 64 * 1024
_STATUSES = ("open", "closed", "all")
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(service: ConsoleService, *, manage_service: bool = True) -> web.Application:
    """The console application; with ``manage_service`` it starts and stops the service."""
    app = web.Application(middlewares=[_errors], client_max_size=_MAX_BODY)
    app[SERVICE] = service
    if manage_service:
        app.cleanup_ctx.append(_service_lifetime)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", _home)
    app.router.add_get("/cases", _page("cases", "Cases"))
    app.router.add_get("/cases/{case_id}", _page("case", "Case"))
    app.router.add_get("/lenders", _page("lenders", "Lenders"))
    app.router.add_get("/lenders/{tenant}", _page("lender", "Lender"))
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.router.add_get("/api/health", _health)
    app.router.add_get("/api/cases", _list_cases)
    app.router.add_get("/api/cases/{case_id}", _get_case)
    app.router.add_post("/api/cases/{case_id}/label", _label_case)
    app.router.add_get("/api/lenders", _list_lenders)
    app.router.add_get("/api/lenders/{tenant}", _get_lender)
    app.router.add_post("/api/lenders/{tenant}/ahp", _check_judgements)
    app.router.add_post("/api/lenders/{tenant}/config", _publish_config)
    return app


async def _service_lifetime(app: web.Application) -> AsyncIterator[None]:
    await app[SERVICE].start()
    yield
    await app[SERVICE].stop()


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(_SECURITY_HEADERS)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors become JSON answers with a clear, PII-free reason."""
    try:
        return await handler(request)
    except InvalidLabel as exc:
        return _error(400, exc)
    except CaseNotFound as exc:
        return _error(404, exc)
    except (LabelConflict, StaleVersion) as exc:
        return _error(409, exc)
    except JudgementsRefused as exc:
        return _json({**exc.report, "error": scrub_text(str(exc))}, status=422)
    except PublishFailed as exc:
        return _error(503, exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("console request failed: %s %s", request.method, request.path)
        return _json({"error": "internal error; see the console's log"}, status=500)


def _error(status: int, exc: Exception) -> web.Response:
    return _json({"error": scrub_text(str(exc))}, status=status)


def _json(data: Any, status: int = 200) -> web.Response:
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return web.Response(body=body, status=status, content_type="application/json")


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(
        text=orjson.dumps({"error": message}).decode(), content_type="application/json"
    )


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(
            text='{"error": "send the request body as application/json"}',
            content_type="application/json",
        )
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise _bad_request("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad_request("the request body must be a JSON object")
    return data


# -- pages ---------------------------------------------------------------------------


async def _home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/cases")


def render_page(name: str, title: str) -> str:
    """A console page: the shared layout (head, header) around pages/<name>.html.

    The page's own script is static/<name>.js.
    """
    layout = (PAGES_DIR / "layout.html").read_text(encoding="utf-8")
    main = (PAGES_DIR / f"{name}.html").read_text(encoding="utf-8")
    return (
        layout.replace("<!--title-->", title)
        .replace("<!--script-->", name)
        .replace("<!--main-->", main)
    )


def _page(name: str, title: str) -> Handler:
    body = render_page(name, title).encode("utf-8")  # rendered once, when the app is built

    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    return page


# -- cases ---------------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return to_json_form(None, moment.astimezone(UTC)) if moment is not None else None


def case_summary(case: Case) -> dict[str, Any]:
    """What the case list shows: masked, small."""
    record = case.record
    return {
        "case_id": case.case_id,
        "kind": case.kind,
        "source": case.source,
        "tenant_id": case.tenant_id,
        "severity": case.severity,
        "score": case.score,
        "typology": case.typologies[0],
        "typologies": list(case.typologies),
        # The list shows what fired; "<INDICATOR>_NOT_PROVIDED" codes are in the case view.
        "reasons": [
            {"code": code, "contribution": c}
            for code, c in case.reasons
            if not code.endswith("_NOT_PROVIDED")
        ][:3],
        "occurred_at": _iso(case.occurred_at),
        "status": case.status,
        "label": case.label.label if case.label else None,
        "customer_id": record.get("customer_id"),
        "card_masked": record.get("card_masked"),
        "device_ref": record.get("device_ref"),
    }


def case_detail(case: Case) -> dict[str, Any]:
    """The case view: every reason, the subject to label, the full (masked) record."""
    labels = SUBJECT_LABELS.get(case.subject_type or "")
    return {
        **case_summary(case),
        "reasons": [{"code": code, "contribution": c} for code, c in case.reasons],
        "subject_event_id": case.subject_event_id,
        "subject_type": case.subject_type,
        "labels": {"fraud": labels[0], "legitimate": labels[1]} if labels else None,
        "labelled": (
            {
                "label": case.label.label,
                "analyst_id": case.label.analyst_id,
                "labelled_at": _iso(case.label.labelled_at),
                "event_id": case.label.event_id,
            }
            if case.label
            else None
        ),
        "record": to_json_form(None, dict(case.record)),
    }


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        raise _bad_request(f"{name} must be one of {', '.join(allowed)}")
    return value


async def _list_cases(request: web.Request) -> web.Response:
    store = request.app[SERVICE].cases
    status = _choice(request, "status", _STATUSES)
    try:
        limit = int(request.query.get("limit", "200"))
    except ValueError:
        raise _bad_request("limit must be an integer") from None
    if not 1 <= limit <= 1000:
        raise _bad_request("limit must be between 1 and 1000")
    cases = store.query(
        lender=request.query.get("lender", "").strip() or None,
        severity=_choice(request, "severity", SEVERITIES),
        typology=_choice(request, "typology", TYPOLOGIES),
        status=None if status in (None, "all") else status,
        limit=limit,
    )
    return _json(
        {
            "cases": [case_summary(case) for case in cases],
            "facets": store.facets(),
            "counts": store.counts(),
        }
    )


async def _get_case(request: web.Request) -> web.Response:
    case_id = request.match_info["case_id"]
    case = request.app[SERVICE].cases.get(case_id)
    if case is None:
        raise CaseNotFound(f"no case {case_id!r} (unknown, or no longer kept)")
    return _json(case_detail(case))


async def _label_case(request: web.Request) -> web.Response:
    body = await _body(request)
    analyst = request.headers.get(ANALYST_HEADER) or body.get("analyst_id")
    verdict = body.get("verdict")
    if not isinstance(verdict, str):
        raise InvalidLabel("verdict must be 'fraud' or 'legitimate'")
    outcome = await request.app[SERVICE].label_case(request.match_info["case_id"], verdict, analyst)
    return _json(
        {
            "case": case_detail(outcome.case),
            "event_id": outcome.event_id,
            "label": outcome.label,
            "published": outcome.published,
        }
    )


# -- lenders -------------------------------------------------------------------------


def _tenant(request: web.Request) -> str:
    tenant = request.match_info["tenant"]
    if not 1 <= len(tenant) <= 128 or not tenant.isprintable():
        raise _bad_request("a lender id is 1-128 printable characters")
    return tenant


async def _list_lenders(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    tenants = sorted(set(service.lenders.tenants()) | set(service.cases.facets()["lenders"]))
    return _json(
        {
            "lenders": [
                {
                    "tenant_id": tenant,
                    "config_version": service.lenders.current(tenant)["config_version"],
                    "published": service.lenders.published(tenant),
                }
                for tenant in tenants
            ]
        }
    )


async def _get_lender(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    book = request.app[SERVICE].lenders
    current = book.current(tenant)
    return _json(
        {
            "tenant_id": tenant,
            "config_version": current["config_version"],
            "published": book.published(tenant),
            "root": current["root"],
            "nodes": [
                {
                    "name": node["name"],
                    "criteria": list(node["criteria"]),
                    "matrix": node.get("matrix"),
                    "weights": node.get("weights"),
                }
                for node in current["nodes"]
            ],
            "thresholds": {
                name: current[name]
                for name in (
                    "approve_below",
                    "decline_at_or_above",
                    "fraud_alert_threshold",
                    "lr_weight_adjust_limit",
                )
            },
            "report": judgement_report(current, {}),
        }
    )


async def _check_judgements(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    body = await _body(request)
    current = request.app[SERVICE].lenders.current(tenant)
    return _json(judgement_report(current, body.get("matrices", {})))


async def _publish_config(request: web.Request) -> web.Response:
    tenant = _tenant(request)
    body = await _body(request)
    edited = await request.app[SERVICE].publish_config(
        tenant, body.get("base_version"), body.get("matrices", {})
    )
    return _json(
        {
            "published": True,
            "tenant_id": tenant,
            "config_version": edited.event["config_version"],
            "event_id": edited.event["event_id"],
            "report": edited.report,
        }
    )


async def _health(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    status = service.status
    return _json(
        {
            "reader": {
                "assigned": status.assigned,
                "messages": status.messages,
                "undecodable": status.undecodable,
                "per_topic": status.per_topic,
                "last_error": status.last_error,
            },
            "cases": {**service.cases.counts(), "max": service.cases.max_cases},
            "lenders_with_config": len(service.lenders.tenants()),
        }
    )
