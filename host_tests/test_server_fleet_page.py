"""The fleet page in headless Chromium (Debian's chromium, driven by Playwright): every reader
with app, list, last seen, backlog, records held and alarms (conflicts, auth failures, silent),
refreshed in place without reloading. The screenshot's path is printed in the test output."""

import os
import shutil

import pytest
from conftest import ROOT

from flashtool.server import keys, records
from flashtool.server.app import Limits, StationServer
from flashtool.server.client import ReaderClient

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if sync_playwright is None or not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium (Debian) or playwright (requirements.txt) missing")
        pytest.skip("needs Debian's chromium and the playwright package")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def test_fleet_page_shows_alarms_and_refreshes_in_place(tmp_path, browser):
    pub = tmp_path / "pub"
    pub.mkdir()
    ring = tmp_path / "data" / "readers.json"
    k = {rid: keys.issue(ring, rid)[:2] for rid in ("G01", "G02", "G03")}
    srv = StationServer(pub, tmp_path / "data", port=0, limits=Limits(silent_after=600))
    srv.start()
    try:
        def client(rid):
            return ReaderClient("127.0.0.1", srv.port, rid, *k[rid])

        g1, g2 = client("G01"), client("G02")
        assert g1.upload(b"".join(records.make(i) for i in range(1, 41)))[0] == 200
        assert g1.report({"app": 3, "list": 12, "backlog": 0})[0] == 200
        assert g2.upload(b"".join(records.make(i) for i in range(1, 6)))[0] == 200
        assert g2.upload(records.make(3, reason=9))[1]["conflicts"] == 1
        assert g2.report({"app": 2, "list": 11, "backlog": 7})[0] == 200
        evil = ReaderClient("127.0.0.1", srv.port, "G02", k["G02"][0], b"\x00" * 32)
        assert evil.report({"app": "evil"})[0] == 401
        # G03 is in the key ring but never called in: silent

        page = browser.new_page(viewport={"width": 1100, "height": 520})
        page.set_default_timeout(300_000)  # waits end on the event; this only catches a hang
        page.goto(srv.url + "/")
        page.wait_for_selector("#fleet tbody tr[data-reader=G03]")
        page.evaluate("window.__sameDocument = true")

        def row(rid):
            return page.locator("#fleet tbody tr[data-reader=%s] td" % rid).all_inner_texts()

        r1, r2, r3 = row("G01"), row("G02"), row("G03")
        assert r1[:3] == ["G01", "3", "12"] and r1[4:6] == ["0", "40"] and r1[6] == "", r1
        assert r2[:3] == ["G02", "2", "11"] and r2[4:6] == ["7", "5"], r2
        assert "conflicts 1" in r2[6] and "auth failures 1" in r2[6], r2
        assert r3[0] == "G03" and r3[3] == "never" and "silent" in r3[6], r3
        assert page.get_attribute("#fleet tbody tr[data-reader=G02]", "class") == "alarm"
        assert page.get_attribute("#fleet tbody tr[data-reader=G03]", "class") == "silent"
        alarms = page.locator("#alarms li").all_inner_texts()
        assert any("G02 conflict: epoch 7 seq 3" in a for a in alarms), alarms
        assert any("G02 auth: bad MAC" in a for a in alarms), alarms

        # G01 reports a new app and list: the page shows it without a reload
        stamp = page.get_attribute("body", "data-updated")
        assert g1.report({"app": 4, "list": 13, "backlog": 2})[0] == 200
        page.wait_for_function(
            "document.querySelector('#fleet tbody tr[data-reader=G01] td:nth-child(2)')"
            ".textContent === '4'")
        assert row("G01")[:3] == ["G01", "4", "13"]
        assert page.evaluate("window.__sameDocument") is True  # refreshed in place
        assert page.get_attribute("body", "data-updated") >= stamp
        shot = tmp_path / "fleet-page.png"
        page.screenshot(path=str(shot), full_page=True)
        keep = ROOT / "build" / "screenshots"
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, keep / "fleet-page.png")
        print("fleet page screenshot: %s" % (keep / "fleet-page.png"))
        assert shot.stat().st_size > 5000
    finally:
        srv.stop()
