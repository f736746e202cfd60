"""aiohttp routes of the fraud-ops console: sign-in, static pages and the JSON API behind them.

Every request but the sign-in page, its API and the static files needs a signed-in session
(a server-side session whose random token is in an httponly, SameSite=strict cookie, Secure
over TLS). Every state-changing request must also carry the session's CSRF token in the
``X-CSRF-Token`` header. Roles are checked here, on the server, for every API call; a case,
lender or proposal of a lender the user does not belong to answers 404, as an unknown one
does, so ids are not confirmed to outsiders.

Pages are plain HTML with small vanilla scripts (no build, no CDN); every value reaches the
page through the JSON API and is inserted as text, never as HTML. The Content-Security-
Policy allows only this origin's own scripts and styles, and request bodies must be JSON.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from greencredit.streams.masking import scrub_text

from .auth import (
    ADMIN,
    ANALYST,
    POLICY_APPROVER,
    POLICY_MAKER,
    SUPERVISOR,
    AuthError,
    Session,
    SignInThrottled,
    User,
    UserError,
)
from .cases import SEVERITIES, InvalidLabel
from .lenders import THRESHOLDS, JudgementsRefused, StaleVersion, judgement_report
from .policy import NoSuchProposal, ProposalClosed, SelfApproval, proposal_view
from .service import ConsoleService, LabelConflict, PublishFailed
from .store import STATUSES, CaseConflict, NoSuchCase, case_detail, case_summary
from .typology import TYPOLOGIES

__all__ = [
    "CSRF_HEADER",
    "SERVICE",
    "SESSION_COOKIE",
    "STATIC_DIR",
    "WebSettings",
    "build_app",
    "render_page",
]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).with_name("static")
PAGES_DIR = Path(__file__).with_name("pages")  # HTML bodies, rendered into pages/layout.html
SESSION_COOKIE = "gc_session"
CSRF_HEADER = "X-CSRF-Token"
CASE_ROLES = (ANALYST, SUPERVISOR)
POLICY_ROLES = (POLICY_MAKER, POLICY_APPROVER)


@dataclass(frozen=True)
class WebSettings:
    """The web layer's part of Settings (console_*)."""

    trusted_proxy: str | None = None
    proxy_user_header: str = "X-Forwarded-User"
    cookie_secure: bool = False
    session_max_s: int = 12 * 3600


SERVICE = web.AppKey("service", ConsoleService)
WEB = web.AppKey("web", WebSettings)
SESSION = web.RequestKey("session", Session)

_MAX_BODY = 64 * 1024
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PUBLIC = frozenset({"/login", "/api/health", "/api/session"})
_CASE_FILTER_STATUSES = ("active", *STATUSES, "all")
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


def build_app(
    service: ConsoleService, settings: WebSettings | None = None, *, manage_service: bool = True
) -> web.Application:
    """The console application; with ``manage_service`` it starts and stops the service."""
    app = web.Application(middlewares=[_errors, _auth], client_max_size=_MAX_BODY)
    app[SERVICE] = service
    app[WEB] = settings or WebSettings()
    if manage_service:
        app.cleanup_ctx.append(_service_lifetime)
    app.on_response_prepare.append(_security_headers)
    app.router.add_get("/", _home)
    app.router.add_get("/login", _page("login", "Sign in"))
    app.router.add_get("/cases", _page("cases", "Cases"))
    app.router.add_get("/cases/{case_id}", _page("case", "Case"))
    app.router.add_get("/lenders", _page("lenders", "Lenders"))
    app.router.add_get("/lenders/{tenant}", _page("lender", "Lender"))
    app.router.add_get("/audit", _page("audit", "Audit"))
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.router.add_get("/api/health", _health)
    app.router.add_post("/api/session", _sign_in)
    app.router.add_get("/api/session", _whoami)
    app.router.add_delete("/api/session", _sign_out)
    app.router.add_get("/api/cases", _list_cases)
    app.router.add_get("/api/cases/{case_id}", _get_case)
    app.router.add_post("/api/cases/{case_id}/label", _label_case)
    app.router.add_post("/api/cases/{case_id}/assign", _assign_case)
    app.router.add_post("/api/cases/{case_id}/status", _case_status)
    app.router.add_post("/api/cases/{case_id}/comments", _comment_case)
    app.router.add_get("/api/lenders", _list_lenders)
    app.router.add_get("/api/lenders/{tenant}", _get_lender)
    app.router.add_post("/api/lenders/{tenant}/ahp", _check_judgements)
    app.router.add_get("/api/lenders/{tenant}/proposals", _list_proposals)
    app.router.add_post("/api/lenders/{tenant}/proposals", _propose)
    app.router.add_post("/api/proposals/{proposal_id}/approve", _approve)
    app.router.add_post("/api/proposals/{proposal_id}/reject", _reject)
    app.router.add_get("/api/audit", _audit)
    app.router.add_get("/api/users", _list_users)
    app.router.add_post("/api/users/{username}", _update_user)
    return app


async def _service_lifetime(app: web.Application) -> AsyncIterator[None]:
    await app[SERVICE].start()
    yield
    await app[SERVICE].stop()


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(_SECURITY_HEADERS)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"


# Domain errors and the HTTP status each answers with (checked in this order).
_STATUS_OF: tuple[tuple[type[Exception] | tuple[type[Exception], ...], int], ...] = (
    ((InvalidLabel, UserError), 400),
    (AuthError, 401),
    (SelfApproval, 403),
    ((NoSuchCase, NoSuchProposal), 404),
    ((LabelConflict, StaleVersion, CaseConflict, ProposalClosed), 409),
    (PublishFailed, 503),
)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Domain errors become JSON answers with a clear, PII-free reason."""
    try:
        return await handler(request)
    except JudgementsRefused as exc:
        return _json({**exc.report, "error": scrub_text(str(exc))}, status=422)
    except SignInThrottled as exc:
        response = _error(429, exc)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response
    except web.HTTPException:
        raise
    except Exception as exc:
        for kinds, status in _STATUS_OF:
            if isinstance(exc, kinds):
                return _error(status, exc)
        log.exception("console request failed: %s %s", request.method, request.path)
        return _json({"error": "internal error; see the console's log"}, status=500)


# -- sessions, CSRF, roles -----------------------------------------------------------


def _address(request: web.Request) -> str:
    return request.remote or "-"


def _public(request: web.Request) -> bool:
    if request.path.startswith("/static/"):
        return True
    # GET (who am I) and DELETE (sign out) of /api/session need the session.
    return request.path in _PUBLIC and (request.path != "/api/session" or request.method == "POST")


async def _resolve_session(request: web.Request) -> tuple[Session | None, str | None]:
    """The cookie's session, or a new one for the trusted proxy's user (with its token)."""
    users = request.app[SERVICE].users
    token = request.cookies.get(SESSION_COOKIE)
    session = await users.session(token) if token else None
    proxy_user = _proxy_user(request, request.app[WEB])
    if proxy_user is not None and (session is None or session.user.username != proxy_user):
        issued = await users.proxy_session(proxy_user, _address(request))
        if issued is not None:
            return issued[1], issued[0]
    return session, None


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the session (cookie, or the trusted proxy's header); enforce sign-in and CSRF."""
    if _public(request):
        return await handler(request)
    session, new_token = await _resolve_session(request)
    if session is None:
        if request.path.startswith("/api/"):
            raise _json_error(web.HTTPUnauthorized, "sign in first")
        target = "/login" if request.path == "/" else f"/login?next={quote(request.path_qs)}"
        raise web.HTTPFound(target)
    # Always, even for the proxy's user: a session issued just now has a token no page could
    # know yet, so a cross-site POST through the proxy is refused like any other.
    if request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise _json_error(web.HTTPForbidden, f"missing or wrong {CSRF_HEADER} header")
    request[SESSION] = session
    response = await handler(request)
    if new_token is not None:
        _set_cookie(request, response, new_token)
    return response


def _proxy_user(request: web.Request, settings: WebSettings) -> str | None:
    """The proxy's user header, only from the one proxy address a setting names."""
    if not settings.trusted_proxy or request.remote != settings.trusted_proxy:
        return None
    value = request.headers.get(settings.proxy_user_header, "").strip()
    return value or None


def _set_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    settings = request.app[WEB]
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Strict",
        secure=request.secure or settings.cookie_secure,
        path="/",
        max_age=settings.session_max_s,
    )


def _user(request: web.Request, *roles: str) -> User:
    """The signed-in user, if they hold one of ``roles``; 403 otherwise."""
    user: User = request[SESSION].user
    if roles and not user.has(*roles):
        raise _json_error(web.HTTPForbidden, f"this needs the role {' or '.join(roles)}")
    return user


def _json_error(kind: type[web.HTTPException], message: str) -> web.HTTPException:
    return kind(text=orjson.dumps({"error": message}).decode(), content_type="application/json")


def _error(status: int, exc: Exception) -> web.Response:
    return _json({"error": scrub_text(str(exc))}, status=status)


def _json(data: Any, status: int = 200) -> web.Response:
    body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
    return web.Response(body=body, status=status, content_type="application/json")


def _bad_request(message: str) -> web.HTTPException:
    return _json_error(web.HTTPBadRequest, message)


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise _json_error(web.HTTPUnsupportedMediaType, "send the request body as application/json")
    try:
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        raise _bad_request("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise _bad_request("the request body must be a JSON object")
    return data


def _session_view(session: Session) -> dict[str, Any]:
    return {"user": session.user.public(), "csrf_token": session.csrf_token}


async def _sign_in(request: web.Request) -> web.Response:
    body = await _body(request)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not isinstance(password, str):
        raise _bad_request("send username and password")
    token, session = await request.app[SERVICE].users.sign_in(username, password, _address(request))
    response = _json(_session_view(session))
    _set_cookie(request, response, token)
    return response


async def _whoami(request: web.Request) -> web.Response:
    return _json(_session_view(request[SESSION]))


async def _sign_out(request: web.Request) -> web.Response:
    await request.app[SERVICE].users.sign_out(request[SESSION], _address(request))
    response = _json({"signed_out": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


# -- pages ---------------------------------------------------------------------------


async def _home(request: web.Request) -> web.StreamResponse:
    user: User = request[SESSION].user
    if user.has(*CASE_ROLES):
        raise web.HTTPFound("/cases")
    if user.has(*POLICY_ROLES):
        raise web.HTTPFound("/lenders")
    raise web.HTTPFound("/audit")


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


def _choice(request: web.Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query.get(name, "").strip()
    if not value:
        return None
    if value not in allowed:
        raise _bad_request(f"{name} must be one of {', '.join(allowed)}")
    return value


async def _list_cases(request: web.Request) -> web.Response:
    user = _user(request, *CASE_ROLES)
    store = request.app[SERVICE].cases
    status = _choice(request, "status", _CASE_FILTER_STATUSES)
    try:
        limit = int(request.query.get("limit", "200"))
    except ValueError:
        raise _bad_request("limit must be an integer") from None
    if not 1 <= limit <= 1000:
        raise _bad_request("limit must be between 1 and 1000")
    owner = request.query.get("owner", "").strip() or None
    rows = await store.query(
        user.lenders,
        lender=request.query.get("lender", "").strip() or None,
        severity=_choice(request, "severity", SEVERITIES),
        typology=_choice(request, "typology", TYPOLOGIES),
        status=None if status in (None, "all") else status,
        owner=user.username if owner == "me" else owner,
        limit=limit,
    )
    return _json(
        {
            "cases": [case_summary(row) for row in rows],
            "facets": await store.facets(user.lenders),
            "counts": await store.counts(user.lenders),
        }
    )


async def _case_view(request: web.Request, user: User, case_id: str) -> dict[str, Any]:
    store = request.app[SERVICE].cases
    row = await store.get(case_id, user.lenders)
    return case_detail(row, await store.timeline(case_id))


async def _get_case(request: web.Request) -> web.Response:
    user = _user(request, *CASE_ROLES)
    return _json(await _case_view(request, user, request.match_info["case_id"]))


async def _label_case(request: web.Request) -> web.Response:
    user = _user(request, *CASE_ROLES)
    body = await _body(request)
    verdict = body.get("verdict")
    if not isinstance(verdict, str):
        raise InvalidLabel("verdict must be 'fraud' or 'legitimate'")
    case_id = request.match_info["case_id"]
    outcome = await request.app[SERVICE].label_case(case_id, verdict, user)
    return _json(
        {
            "case": await _case_view(request, user, case_id),
            "event_id": outcome.event_id,
            "label": outcome.label,
            "published": outcome.published,
        }
    )


async def _assign_case(request: web.Request) -> web.Response:
    """Analysts take an unowned case (or give back their own); supervisors assign anyone."""
    user = _user(request, *CASE_ROLES)
    body = await _body(request)
    owner = body.get("owner")
    if owner is not None and not isinstance(owner, str):
        raise _bad_request("owner must be a user name or null")
    case_id = request.match_info["case_id"]
    service = request.app[SERVICE]
    row = await service.cases.get(case_id, user.lenders)
    if not user.has(SUPERVISOR):
        mine_or_free = row.owner in (None, user.username)
        if owner not in (None, user.username) or not mine_or_free:
            raise _json_error(web.HTTPForbidden, "reassigning a case needs the role supervisor")
    if owner is not None:
        target = await service.users.get(owner)
        if (
            target is None
            or target.disabled
            or row.tenant_id not in target.lenders
            or not target.has(*CASE_ROLES)
        ):
            raise _bad_request(f"{owner!r} is not an analyst of this case's lender")
    await service.cases.assign(case_id, user.lenders, owner, user.username)
    return _json(await _case_view(request, user, case_id))


async def _case_status(request: web.Request) -> web.Response:
    """Start work, close with a resolution; reopening a closed case needs a supervisor."""
    user = _user(request, *CASE_ROLES)
    body = await _body(request)
    status, resolution = body.get("status"), body.get("resolution")
    if not isinstance(status, str) or (resolution is not None and not isinstance(resolution, str)):
        raise _bad_request("send status (and resolution when closing) as strings")
    case_id = request.match_info["case_id"]
    store = request.app[SERVICE].cases
    row = await store.get(case_id, user.lenders)
    if row.status == "closed" and status != "closed" and not user.has(SUPERVISOR):
        raise _json_error(web.HTTPForbidden, "reopening a closed case needs the role supervisor")
    await store.set_status(case_id, user.lenders, status, resolution, user.username)
    return _json(await _case_view(request, user, case_id))


async def _comment_case(request: web.Request) -> web.Response:
    user = _user(request, *CASE_ROLES)
    body = await _body(request)
    text = body.get("text")
    if not isinstance(text, str):
        raise _bad_request("send the comment as text")
    case_id = request.match_info["case_id"]
    await request.app[SERVICE].cases.comment(case_id, user.lenders, text, user.username)
    return _json(await _case_view(request, user, case_id))


# -- lenders and policy ----------------------------------------------------------------


def _tenant(request: web.Request, user: User) -> str:
    """The path's lender, if it is one of the user's; otherwise 404, as for an unknown one."""
    tenant = request.match_info["tenant"]
    if not 1 <= len(tenant) <= 128 or not tenant.isprintable():
        raise _bad_request("a lender id is 1-128 printable characters")
    if tenant not in user.lenders:
        raise _json_error(web.HTTPNotFound, f"no lender {tenant!r}")
    return tenant


async def _list_lenders(request: web.Request) -> web.Response:
    user = _user(request, *POLICY_ROLES)
    book = request.app[SERVICE].lenders
    return _json(
        {
            "lenders": [
                {
                    "tenant_id": tenant,
                    "config_version": book.current(tenant)["config_version"],
                    "published": book.published(tenant),
                }
                for tenant in sorted(user.lenders)
            ]
        }
    )


async def _get_lender(request: web.Request) -> web.Response:
    user = _user(request, *POLICY_ROLES)
    tenant = _tenant(request, user)
    book = request.app[SERVICE].lenders
    current = book.current(tenant)
    return _json(
        {
            "tenant_id": tenant,
            "config_version": current["config_version"],
            "published": book.published(tenant),
            "proposed_by": current.get("proposed_by"),
            "approved_by": current.get("approved_by"),
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
            "thresholds": {name: current[name] for name in THRESHOLDS},
            "report": judgement_report(current, {}),
            "can_propose": user.has(POLICY_MAKER),
            "can_approve": user.has(POLICY_APPROVER),
        }
    )


async def _check_judgements(request: web.Request) -> web.Response:
    user = _user(request, *POLICY_ROLES)
    tenant = _tenant(request, user)
    body = await _body(request)
    current = request.app[SERVICE].lenders.current(tenant)
    return _json(judgement_report(current, body.get("matrices", {})))


async def _propose(request: web.Request) -> web.Response:
    user = _user(request, POLICY_MAKER)
    tenant = _tenant(request, user)
    body = await _body(request)
    service = request.app[SERVICE]
    row = await service.proposals.propose(
        service.lenders,
        tenant,
        body.get("base_version"),
        body.get("matrices", {}),
        body.get("thresholds"),
        user.username,
    )
    return _json(proposal_view(row), status=201)


async def _list_proposals(request: web.Request) -> web.Response:
    user = _user(request, *POLICY_ROLES)
    tenant = _tenant(request, user)
    rows = await request.app[SERVICE].proposals.of_lenders(user.lenders, tenant)
    return _json({"proposals": [proposal_view(row) for row in rows]})


def _proposal_id(request: web.Request) -> int:
    raw = request.match_info["proposal_id"]
    if not raw.isdigit() or len(raw) > 9:
        raise _json_error(web.HTTPNotFound, f"no proposal {raw!r}")
    return int(raw)


async def _approve(request: web.Request) -> web.Response:
    user = _user(request, POLICY_APPROVER)
    edited = await request.app[SERVICE].approve_proposal(_proposal_id(request), user)
    event = edited.event
    return _json(
        {
            "published": True,
            "tenant_id": event["tenant_id"],
            "config_version": event["config_version"],
            "event_id": event["event_id"],
            "proposed_by": event["proposed_by"],
            "approved_by": event["approved_by"],
            "report": edited.report,
        }
    )


async def _reject(request: web.Request) -> web.Response:
    user = _user(request, POLICY_APPROVER)
    proposal_id = _proposal_id(request)
    await request.app[SERVICE].proposals.reject(proposal_id, user.lenders, user.username)
    return _json({"rejected": True, "id": proposal_id})


# -- administration --------------------------------------------------------------------


async def _audit(request: web.Request) -> web.Response:
    """The audit, newest first, a page at a time (``before`` = the last id seen)."""
    _user(request, ADMIN)
    try:
        limit = int(request.query.get("limit", "50"))
        before = int(request.query["before"]) if request.query.get("before") else None
    except ValueError:
        raise _bad_request("limit and before must be integers") from None
    if not 1 <= limit <= 500:
        raise _bad_request("limit must be between 1 and 500")
    rows = await request.app[SERVICE].audit_page(before, limit)
    return _json(
        {
            "entries": rows,
            "next_before": rows[-1]["id"] if len(rows) == limit else None,
        }
    )


async def _list_users(request: web.Request) -> web.Response:
    _user(request, ADMIN)
    users = await request.app[SERVICE].users.all()
    return _json({"users": [user.public() for user in users]})


async def _update_user(request: web.Request) -> web.Response:
    """Roles, lenders and the disabled flag of a user (passwords only through the CLI)."""
    admin = _user(request, ADMIN)
    body = await _body(request)
    roles, lenders, disabled = body.get("roles"), body.get("lenders"), body.get("disabled")
    for name, value in (("roles", roles), ("lenders", lenders)):
        if value is not None and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise _bad_request(f"{name} must be a list of strings")
    if disabled is not None and not isinstance(disabled, bool):
        raise _bad_request("disabled must be true or false")
    user = await request.app[SERVICE].users.update(
        request.match_info["username"],
        actor=admin.username,
        roles=roles,
        lenders=lenders,
        disabled=disabled,
    )
    return _json(user.public())


async def _health(request: web.Request) -> web.Response:
    """Public: whether the reader runs (no case or lender data)."""
    status = request.app[SERVICE].status
    return _json(
        {
            "reader": {
                "assigned": status.assigned,
                "messages": status.messages,
                "undecodable": status.undecodable,
                "per_topic": status.per_topic,
                "last_error": status.last_error,
            },
        }
    )
