"""The clinic pages and the patient portal can run under a strict Content-Security-Policy: no inline
script, no inline style, no inline event handlers or hx-on (domain of issue 10, section 2 "Front end"),
and they are served with that policy enforced."""

import re
from pathlib import Path

import pytest

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
STRICT_AREAS = ["clinic", "symptoms"]
FORBIDDEN = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I),
    "inline style element": re.compile(r"<style\b", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "hx-on": re.compile(r"\b(?:data-)?hx-on", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def templates():
    for area in STRICT_AREAS:
        yield from sorted((TEMPLATES / area).rglob("*.html"))


@pytest.mark.parametrize("path", list(templates()), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_template_has_nothing_a_strict_csp_refuses(path):
    text = path.read_text()
    found = [what for what, pattern in FORBIDDEN.items() if pattern.search(text)]
    assert not found, f"{path.relative_to(TEMPLATES)}: {found}"


def test_htmx_is_pinned_to_2x_with_no_history_cache_and_no_eval():
    base = (TEMPLATES / "clinic" / "base.html").read_text()
    assert "vendor/htmx-2.0.11.min.js" in base
    assert '"historyCacheSize": 0' in base and '"allowEval": false' in base
    assert 'hx-history="false"' in base


@pytest.mark.django_db
def test_clinic_and_portal_pages_are_served_with_the_strict_policy_enforced(client, prescriber):
    client.force_login(prescriber)
    for path in ["/clinic/", "/clinic/roles/", "/clinic/login/", "/me/login/"]:
        policy = client.get(path).headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in policy and "style-src 'self'" in policy, (path, policy)
        assert "unsafe" not in policy
    admin = client.get("/admin/")
    assert "Content-Security-Policy" not in admin.headers  # third-party pages: report-only
    assert "script-src 'self'" in admin.headers["Content-Security-Policy-Report-Only"]
