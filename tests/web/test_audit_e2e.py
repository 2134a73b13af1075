"""The admin's audit page in headless Chromium against the real server: from the top bar,
a failed login is found by who and outcome, the filters stay in the address, and the same
selection downloads as a CSV a spreadsheet reads."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.web.helpers import DemoServer, PageLog, api, sign_in

ADMIN = "admin@demo.hoichan.vn"
# An address with no account: its failure is logged like any other, and locks nobody out.
GUESSER = "khong.ai@benhvien-khac.vn"


def test_the_admin_finds_a_failed_login_and_exports_it(
        demo_server: DemoServer, open_page: Callable[[PageLog | None], Page]) -> None:
    status, _ = api(demo_server, "POST", "/api/auth/login",
                    body={"email": GUESSER, "password": "not-the-password"})
    assert status == 401
    log = PageLog()
    page = open_page(log)
    page.goto(demo_server.url + "/login")
    sign_in(page, ADMIN)
    page.get_by_test_id("audit-link").click()
    expect(page.get_by_test_id("audit-table")).to_be_visible()

    page.get_by_test_id("audit-actor_email").fill(GUESSER)
    page.get_by_test_id("audit-outcome").select_option("failure")
    page.get_by_test_id("audit-search").click()
    rows = page.get_by_test_id("audit-row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("auth.login")
    expect(rows.first).to_contain_text("unknown account")
    assert "outcome=failure" in page.url and "actor_email=" in page.url
    # Reloaded, the page shows the same search.
    page.reload()
    expect(page.get_by_test_id("audit-row")).to_have_count(1)
    expect(page.get_by_test_id("audit-actor_email")).to_have_value(GUESSER)

    with page.expect_download() as download:
        page.get_by_test_id("audit-export").click()
    assert download.value.suggested_filename.endswith(".csv")
    text = download.value.path().read_text(encoding="utf-8-sig")
    [event] = list(csv.DictReader(io.StringIO(text)))
    assert (event["actor_email"], event["action"], event["outcome"]) == (
        GUESSER, "auth.login", "failure")

    # A search that matches nothing says so.
    page.get_by_test_id("audit-patient_id").fill("KHONG-CO")
    page.get_by_test_id("audit-search").click()
    expect(page.get_by_test_id("audit-empty")).to_be_visible()
    assert log.errors == [], log.errors
