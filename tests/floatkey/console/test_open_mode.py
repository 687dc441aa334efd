"""The console in a real headless Chromium against a real server in open mode (loopback: admin)."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qsl

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from tests.support.server import ServerProcess, wait_until


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("console-open") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def page(browser, srv):
    browser.open(srv.url + "/")
    browser.find("#nav a[data-page=overview]")
    return browser


def test_the_console_loads_under_its_csp_without_a_violation(page, srv):
    page.wait_text("[data-fact=Version]", bool, what="the version")
    assert page.text("[data-fact='License source']") == "local"
    errors = [e for e in page.log() if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []


HOSTILE = "<img src=x onerror=alert(1)>"


def seat_rows(page) -> list[str]:
    return [row.text for row in page.driver.find_elements(By.CSS_SELECTOR, "#seats tbody tr")]


def test_a_seat_taken_over_the_api_appears_live_and_hostile_names_stay_text(page, srv):
    srv.add_license(product="cad", floating_users=3)
    page.go("seats")
    answer = srv.post(
        "/api/v4/register",
        {
            "product": "cad",
            "user": HOSTILE,
            "os_hostname": "<b>host</b>",
            "user_info": "<script>x()</script>",
        },
    )
    assert answer.status_code == 200, answer.text
    cell = page.wait(
        lambda d: [c for c in d.find_elements(By.CSS_SELECTOR, "#seats td") if c.text == HOSTILE],
        2.5,
        "the seat to appear within 2 seconds",
    )[0]
    row = cell.find_element(By.XPATH, "..").text
    assert "<b>host</b>" in row and "<script>x()</script>" in row
    assert page.driver.find_elements(By.CSS_SELECTOR, "#main img, #main b, #main script") == []
    assert page.driver.execute_script("return document.querySelectorAll('img').length") == 0
    # An alert() would have opened a dialog: the driver would refuse to run anything else.
    assert page.driver.execute_script("return 1 + 1") == 2


def test_force_release_asks_first_and_the_api_agrees(page, srv):
    srv.post("/api/v4/register", {"product": "cad", "user": "bob", "os_hostname": "bob-pc"})
    page.go("seats")
    page.click('button[data-release$="/bob"]', 3)
    dialog = page.find("dialog[open]")
    assert "bob" in dialog.text
    page.click("dialog[open] button.secondary")  # Cancel: nothing happens
    page.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"), what="the dialog to close")
    assert any(r["user"] == "bob" for r in srv.get("/api/v4/registrations").json()["registrations"])
    page.click('button[data-release$="/bob"]')
    page.click("dialog[open] button.danger")
    page.wait(lambda d: not [r for r in seat_rows(page) if "bob-pc" in r], 3, "the seat to leave the table")
    assert page.text("#seat-status") == "Seat of bob released."
    assert not any(r["user"] == "bob" for r in srv.get("/api/v4/registrations").json()["registrations"])


def test_a_seat_freed_elsewhere_leaves_the_overview_live(page, srv):
    page.go("overview")
    card = "[data-license] .bar-value"
    before = page.wait_text(card, lambda t: t.endswith("/ 3"), what="the seat count")
    srv.post("/api/v4/register", {"product": "cad", "user": "carol"})
    used = int(before.split(" / ")[0])
    page.wait_text(card, lambda t: t == f"{used + 1} / 3", 2.5, "the new seat within 2 seconds")
    srv.post("/api/v4/unregister", {"product": "cad", "user": "carol"})
    page.wait_text(card, lambda t: t == f"{used} / 3", 2.5, "the freed seat within 2 seconds")


def test_add_a_local_license_see_its_details_and_remove_it_with_a_confirmation(page, srv):
    page.go("licenses")
    assert page.driver.find_elements(By.CSS_SELECTOR, "#import-license") == []  # local source
    page.find("#lic-product").send_keys("paint")
    page.find("#lic-name").send_keys("Paint Pro")
    seats = page.find("#lic-seats")
    seats.clear()
    seats.send_keys("7")
    page.click("#add-license button[type=submit]")
    status = page.wait_text(
        "#license-status", lambda t: t.startswith("License paint #"), what="the license added"
    )
    license_id = int(status.split("#")[1].split()[0])
    [lic] = srv.get("/api/v4/license?product=paint").json()
    assert (lic["id"], lic["floating_users"], lic["product_details"]["product_name"]) == (
        license_id,
        7,
        "Paint Pro",
    )
    page.click(f'details[data-license="{license_id}"] summary', 3)
    facts = page.wait_text(f'details[data-license="{license_id}"] dl', lambda t: "floating users" in t)
    assert "7" in facts and "not bound to a key" in facts
    page.click(f'button[data-remove="{license_id}"]')
    page.click("dialog[open] button.danger")
    page.wait_text("#license-status", lambda t: t == f"License #{license_id} removed.", what="the removal")
    assert [x for x in srv.get("/api/v4/license").json() if x["id"] == license_id] == []
    page.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, f'details[data-license="{license_id}"]'), 3)


def test_a_refused_license_says_why_and_changes_nothing(page, srv):
    page.go("licenses")
    before = srv.get("/api/v4/license").json()
    page.find("#lic-product").send_keys("big")
    seats = page.find("#lic-seats")
    seats.clear()
    seats.send_keys("999999999")  # more than a license may have
    page.click("#add-license button[type=submit]")
    message = page.wait_text("#license-status", lambda t: "floating_users" in t, what="the refusal")
    assert "added" not in message
    assert srv.get("/api/v4/license").json() == before


def drawn(page, series: str) -> list[tuple[str, int]]:
    return [
        (p.get_attribute("data-time"), int(p.get_attribute("data-value")))
        for p in page.driver.find_elements(By.CSS_SELECTOR, f'svg g[data-series="{series}"] .point')
    ]


def test_the_usage_charts_draw_the_recorded_history_and_the_csv_is_the_apis(page, srv):
    lic = srv.add_license(product="meter", floating_users=1, max_consumptions=50)
    assert srv.post("/api/v4/register", {"product": "meter", "user": "a"}).status_code == 200
    for user in ("b", "c"):
        refused = srv.post("/api/v4/register", {"product": "meter", "user": user})
        assert refused.json()["code"] == "floating_not_available"
    assert srv.post("/api/v4/add_consumption", {"product": "meter", "consumptions": 6}).status_code == 200
    page.go("usage")
    page.find(f'#usage-license option[value="{lic["id"]}"]')
    Select(page.find("#usage-license")).select_by_value(str(lic["id"]))
    query = page.wait(
        lambda d: (
            (q := d.find_element(By.ID, "usage-export").get_attribute("data-query"))
            and f"license_id={lic['id']}&" in q
            and q
        ),
        what="the chart of the chosen license",
    )
    params = dict(parse_qsl(query))
    api = srv.get("/api/v4/usage", params=params).json()
    seats = [(b["time"], b["seats_in_use"]) for b in api["buckets"]]
    assert drawn(page, "seats in use") == seats
    assert drawn(page, "peak") == [(b["time"], b["peak"]) for b in api["buckets"]]
    assert max(v for _, v in seats) == 1
    assert drawn(page, "consumptions") == [(b["time"], b["consumptions"]) for b in api["buckets"]]
    days = srv.get(
        "/api/v4/usage",
        params={
            "license_id": lic["id"],
            "from": drawn(page, "denials")[0][0],
            "to": params["to"],
            "step": "day",
        },
    ).json()
    assert drawn(page, "denials") == [(b["time"], sum(b["denials"].values())) for b in days["buckets"]]
    assert sum(v for _, v in drawn(page, "denials")) == 2
    page.screenshot("usage")

    page.click("#usage-export")
    exported = page.downloads / f"usage-{lic['id']}-day.csv"
    wait_until(lambda: exported.exists() and exported.stat().st_size > 0, 10, what="the CSV download")
    expected = srv.get("/api/v4/usage.csv", params=params)
    assert expected.status_code == 200
    assert exported.read_bytes() == expected.content
    assert "denied_floating_not_available" in expected.text.splitlines()[0]


def test_seats_filter_and_sort(page, srv):
    srv.add_license(product="sorted", floating_users=5)
    for user, host in [("zed", "aa-host"), ("amy", "zz-host"), ("kim", "mm-host")]:
        assert srv.post("/api/v4/register", {"product": "sorted", "user": user, "os_hostname": host}).ok
    page.go("seats")
    page.find('button[data-release$="/kim"]')
    page.find("#seat-filter").send_keys("sorted")
    users = lambda: [r.split(" ")[2] for r in seat_rows(page)]  # noqa: E731 "sorted #N user ..."
    page.wait(
        lambda _: users() == ["zed", "amy", "kim"] or users() == ["amy", "kim", "zed"], what="the filter"
    )
    Select(page.find("#seat-sort")).select_by_value("user")
    page.wait(lambda _: users() == ["amy", "kim", "zed"], what="sorted by user")
    Select(page.find("#seat-sort")).select_by_value("os_hostname")
    page.wait(lambda _: users() == ["zed", "kim", "amy"], what="sorted by host")
    page.find("#seat-filter").send_keys("-host zz")
    page.wait(lambda _: seat_rows(page) == [], what="no seat to match")
    assert page.text("#seats") == "No seat matches the filter."
    filter_box = page.find("#seat-filter")
    filter_box.clear()
    filter_box.send_keys("mm-HOST")
    page.wait(lambda _: users() == ["kim"], what="a case-blind filter on the host")
    filter_box.clear()


def test_the_usage_of_a_floating_feature_is_its_own_series(page, srv):
    lic = srv.add_license(
        product="suite",
        floating_users=5,
        features=[{"code": "render", "is_floating": True, "floating_users": 1}],
    )
    seat = {"product": "suite", "feature": "render"}
    assert srv.post("/api/v4/register", {"product": "suite", "user": "u1"}).ok
    assert srv.post("/api/v4/featureRegister", {**seat, "user": "u1"}).ok
    assert srv.post("/api/v4/featureRegister", {**seat, "user": "u2"}).status_code == 400
    page.go("usage")
    Select(page.find("#usage-license")).select_by_value(str(lic["id"]))
    page.find('#usage-series option[value="render"]')
    Select(page.find("#usage-series")).select_by_value("render")
    page.wait(
        lambda _: (
            any(v == 1 for _, v in drawn(page, "denials"))
            and f"license_id={lic['id']}&"
            in page.driver.find_element(By.ID, "usage-export").get_attribute("data-query")
        ),
        what="the feature's denials",
    )
    params = dict(parse_qsl(page.driver.find_element(By.ID, "usage-export").get_attribute("data-query")))
    api = srv.get("/api/v4/usage", params=params).json()
    feature = [(b["time"], b["features"].get("render", {}).get("seats_in_use", 0)) for b in api["buckets"]]
    assert drawn(page, "seats in use") == feature and max(v for _, v in feature) == 1
    Select(page.find("#usage-series")).select_by_value("")
    page.wait(lambda _: sum(v for _, v in drawn(page, "denials")) == 0, what="the license's own series")
    Select(page.find("#usage-license")).select_by_index(0)


def test_the_range_picker_asks_for_the_range(page, srv):
    page.go("usage")
    page.find("#usage-export[data-query]")
    for choice, step, days in [("week", "3600", 7), ("month", "21600", 30), ("year", "86400", 365)]:
        Select(page.find("#usage-range")).select_by_value(choice)
        query = page.wait(
            lambda d, step=step: (
                (q := d.find_element(By.ID, "usage-export").get_attribute("data-query"))
                and f"step={step}" in q
                and q
            ),
            what=f"the {choice} range",
        )
        params = dict(parse_qsl(query))
        span = datetime.fromisoformat(params["to"]) - datetime.fromisoformat(params["from"])
        assert span == timedelta(days=days)
        api = srv.get("/api/v4/usage", params=params).json()
        assert len(drawn(page, "seats in use")) == len(api["buckets"])
    Select(page.find("#usage-range")).select_by_value("day")


PAGES = ["overview", "licenses", "seats", "key", "usage"]


def test_each_page_fits_a_phone_without_scrolling_sideways(page, srv):
    srv.post(
        "/api/v4/register", {"product": "cad", "user": "a-very-long-user-name-" * 3, "os_hostname": "h" * 60}
    )
    page.driver.set_window_size(390, 844)
    try:
        width = page.driver.execute_script("return window.innerWidth")
        assert width <= 390
        for name in PAGES:
            page.go(name)
            overflow = page.driver.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at {width}px"
            if name == "seats":
                page.find("#seats .scroll")  # the table scrolls in its own box
                page.screenshot("phone-seats")
    finally:
        page.driver.set_window_size(1280, 800)


def active(page) -> str:
    return str(
        page.driver.execute_script(
            "const a = document.activeElement; "
            "return a.tagName + '|' + (a.dataset.page || a.dataset.release || a.id || '')"
        )
    )


def test_the_nav_is_reachable_with_tab_and_a_dialog_closes_with_escape(page, srv):
    srv.post("/api/v4/register", {"product": "cad", "user": "erin"})
    page.open(srv.url + "/#/overview")
    page.find("#nav a[data-page=seats]")
    body = page.driver.find_element(By.TAG_NAME, "body")
    seen = []
    for _ in range(12):
        body.send_keys(Keys.TAB) if not seen else page.driver.switch_to.active_element.send_keys(Keys.TAB)
        seen.append(active(page))
        if seen[-1] == "A|seats":
            break
    assert "A|overview" in seen and seen[-1] == "A|seats", seen
    page.driver.switch_to.active_element.send_keys(Keys.ENTER)
    page.wait(lambda d: d.title.startswith("Seats"), what="the seats page by keyboard")
    button = page.find('button[data-release$="/erin"]', 3)
    page.driver.execute_script("arguments[0].focus()", button)
    page.driver.switch_to.active_element.send_keys(Keys.ENTER)
    page.find("dialog[open]")
    assert active(page) == "BUTTON|"  # focus moved into the dialog (its Cancel button)
    page.driver.switch_to.active_element.send_keys(Keys.ESCAPE)
    page.wait(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]"), 2, "Escape to close the dialog")
    assert active(page).endswith("/erin")  # back where it was
    assert any(r["user"] == "erin" for r in srv.get("/api/v4/registrations").json()["registrations"])
    outline = page.driver.execute_script("return getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # focus is visible


CONTRAST_SCRIPT = """
function rgba(text) { const m = text.match(/[\\d.]+/g).map(Number); return m.length === 3 ? [...m, 1] : m; }
function background(el) {
  for (let e = el; e; e = e.parentElement) {
    const c = rgba(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) return c;
  }
  return [255, 255, 255, 1];
}
return [...document.querySelectorAll(arguments[0])].filter((e) => e.offsetParent && e.textContent.trim())
  .map((e) => [e.tagName + '.' + e.className, rgba(getComputedStyle(e).color), background(e)]);
"""


def luminance(rgb) -> float:
    def channel(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg, bg) -> float:
    high, low = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_text_contrast_passes_wcag_aa(page, srv):
    checked = 0
    for name in ["overview", "seats", "licenses", "usage"]:
        page.go(name)
        found = page.driver.execute_script(
            CONTRAST_SCRIPT,
            "h1, h2, h3, p, dt, dd, td, th, label, button, #nav a, .who span, .bar-value, .bar-label, "
            "summary, .axis, figcaption, .legend li, .empty, small",
        )
        for what, fg, bg in found:
            assert fg[3] == 1, what
            ratio = contrast(fg, bg)
            assert ratio >= 4.5, f"{name}: {what} {fg} on {bg}: {ratio:.2f}"
            checked += 1
    assert checked > 40


def test_screenshots_of_the_pages(page, srv):
    page.go("overview")
    page.wait_text("[data-license] .bar-value", bool)
    page.screenshot("overview")
    page.go("seats")
    page.find("#seats tbody tr")
    page.screenshot("seats")
    page.go("licenses")
    page.click("details[data-license] summary")
    page.screenshot("licenses")
