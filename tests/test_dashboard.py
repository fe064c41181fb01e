"""The dashboard: a real HTTP server reading the ledger while campaigns run, checked with
plain HTTP/JSON and in a real headless Chromium (Debian's /usr/bin/chromium, driven by
Selenium): the page shows the ledger's numbers and a new experiment appears without a
reload. A screenshot is saved in the test's temporary directory, or under
$AUTORESEARCH_TEST_ARTIFACTS when set (tests never write into the checkout)."""

from __future__ import annotations

import os

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from autoresearch.errors import UsageError
from autoresearch.report.dashboard import check_host
from autoresearch.testing import constant_edit, write_proposals
from conftest import _env, ledger_rows, run_cli

PROPS = [
    {"description": "lower lr", "edits": [constant_edit("LEARNING_RATE", 0.01, 0.003)]},
    {"description": "narrow", "edits": [constant_edit("WIDTH", 64, 16)]},
]


@pytest.mark.parametrize("host, allow, ok", [
    ("127.0.0.1", False, True), ("::1", False, True), ("localhost", False, True), ("127.0.0.2", False, True),
    ("0.0.0.0", False, False), ("192.168.1.20", False, False), ("example.org", False, False), ("0.0.0.0", True, True),
])
def test_check_host(host, allow, ok):
    if ok:
        check_host(host, allow)
    else:
        with pytest.raises(UsageError, match="--allow-remote"):
            check_host(host, allow)


def start_dashboard(arena: Path, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "autoresearch", "dashboard", str(arena), "--port", "0", *args],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("dashboard on http://127.0.0.1:"), line + proc.stderr.read()
    return proc, line.split()[2]


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def add_experiment(arena: Path, tmp_path: Path, description: str, edit: dict) -> None:
    PROPS.append({"description": description, "edits": [edit]})
    try:
        props = write_proposals(tmp_path / "p.json", PROPS)
        r = run_cli("run", arena, "--tag", "d", "--proposals", props)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        PROPS.pop()


@pytest.fixture
def campaign(arena, tmp_path):
    props = write_proposals(tmp_path / "p.json", PROPS)
    assert run_cli("run", arena, "--tag", "d", "--proposals", props).returncode == 0
    return arena


def test_http_and_json(campaign, tmp_path):
    arena = campaign
    proc, url = start_dashboard(arena)
    try:
        status, page = get(url)
        assert status == 200 and 'id="content"' in page and "fetch('/fragment'" in page
        status, body = get(url + "api/status")
        data = json.loads(body)
        ledger = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, metric FROM experiments")}
        assert [(e["id"], e["status"]) for e in data["experiments"]] == [(i, x["status"]) for i, x in sorted(ledger.items())]
        assert data["summary"]["best"]["metric"] == pytest.approx(ledger[1]["metric"])
        assert get(url + "nope")[0] == 404
        before = get(url + "fragment")[1]
        add_experiment(arena, tmp_path, "wider", constant_edit("WIDTH", 64, 256))
        after = get(url + "fragment")[1]
        assert 'data-id="3"' in after and 'data-id="3"' not in before
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_refuses_a_public_address_without_the_flag(campaign):
    r = run_cli("dashboard", campaign, "--host", "0.0.0.0", "--port", "0")
    assert r.returncode == 2 and "--allow-remote" in r.stderr


@pytest.mark.slow
def test_in_a_real_browser_a_new_experiment_appears_without_reload(campaign, tmp_path):
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.fail("Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver "
                    "(make setup does it when it runs as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    arena = campaign
    proc, url = start_dashboard(arena, "--refresh", "0.5")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1100"):
        opts.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=opts)
    try:
        browser.get(url)
        rows = browser.find_elements(By.CSS_SELECTOR, "#experiments tbody tr")
        ledger = {x["id"]: x for x in ledger_rows(arena, "SELECT id, status, metric FROM experiments")}
        assert [int(r.get_attribute("data-id")) for r in rows] == sorted(ledger)
        for r in rows:
            metric = ledger[int(r.get_attribute("data-id"))]["metric"]
            cell = r.find_element(By.CSS_SELECTOR, "td.metric").get_attribute("data-v")
            assert (cell == "" if metric is None else float(cell) == pytest.approx(metric))
        circles = browser.find_elements(By.CSS_SELECTOR, "#chart circle.pt")
        runs = ledger_rows(arena, "SELECT experiment_id FROM runs")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline g.run")) == len(runs)  # the slots' timeline
        # the net change, from the arena's git; the page redraws it every 0.5 s, so an element found
        # a moment ago may be gone when its text is read: read it again until it holds still
        net = WebDriverWait(browser, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda b: b.find_element(By.CSS_SELECTOR, "#net-diff").text)
        assert "#1" in net or net
        assert len(circles) == sum(1 for x in ledger.values() if x["status"] in ("keep", "discard"))
        marker = browser.execute_script("window.__marker = 42; return window.__marker;")
        add_experiment(arena, tmp_path, "wider", constant_edit("WIDTH", 64, 256))
        WebDriverWait(browser, 20).until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#experiments tbody tr")) == len(ledger) + 1)
        assert browser.execute_script("return window.__marker;") == marker  # the same page: no reload
        # it may show up while still pending or running; then it turns into a keep, live
        WebDriverWait(browser, 20).until(
            lambda b: "keep" in b.find_element(By.CSS_SELECTOR, '#experiments tbody tr[data-id="3"]').text)
        row = browser.find_element(By.CSS_SELECTOR, '#experiments tbody tr[data-id="3"]')
        assert "wider" in row.text
        assert len(browser.find_elements(By.CSS_SELECTOR, "#chart circle.pt")) == len(circles) + 1
        artifacts = Path(os.environ.get("AUTORESEARCH_TEST_ARTIFACTS") or tmp_path)
        artifacts.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(artifacts / "dashboard.png"))
        assert (artifacts / "dashboard.png").stat().st_size > 10_000
    finally:
        browser.quit()
        proc.terminate()
        proc.wait(timeout=10)
