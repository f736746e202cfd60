"""The console's pages: the shared layout around each page's body and script, data-free.

Everything behind sign-in is tested over HTTP against PostgreSQL in
tests/integration/test_console_auth.py and test_console.py.
"""

from __future__ import annotations

import pytest

from greencredit.console.web import PAGES_DIR, STATIC_DIR, render_page

PAGES = [path.stem for path in sorted(PAGES_DIR.glob("*.html")) if path.stem != "layout"]


@pytest.mark.parametrize("name", PAGES)
def test_every_page_is_the_shared_layout_around_its_own_body_and_script(name):
    html = render_page(name, name.title())
    assert html.startswith("<!doctype html>") and html.endswith("</html>\n")
    assert f"<title>{name.title()} · greencredit console</title>" in html
    assert f'<script src="/static/{name}.js" defer></script>' in html
    assert (STATIC_DIR / f"{name}.js").is_file()
    assert "<!--" not in html  # every marker of the layout was filled


def test_pages_have_the_sign_in_the_audit_and_no_typed_analyst_id():
    assert {"login", "audit", "cases", "case", "lenders", "lender"} <= set(PAGES)
    assert "analyst-id" not in render_page("case", "Case")


@pytest.mark.parametrize("script", sorted(p.name for p in STATIC_DIR.glob("*.js")))
def test_scripts_insert_data_as_text_only(script):
    assert "innerHTML" not in (STATIC_DIR / script).read_text(encoding="utf-8")
