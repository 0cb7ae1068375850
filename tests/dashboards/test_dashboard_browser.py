"""`mmops dashboard` served on loopback and opened in headless Chromium: each page renders, and is photographed;
on the Promote page a signed-in user rolls production back, and the Models page then shows it.

The server reads a copy of the pipeline's workdir (conftest.py's promotion_workdir), which the rollback changes.
Screenshots go to the test's tmp folder and are copied to test-artifacts/dashboard/ at the repository root.
Without Chromium the test is skipped, except under CI (CI=true), where it fails: CI installs it (.ci/run).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from promotion_users import PROMOTER

from tests.services import free_port, under_ci

pytestmark = pytest.mark.slow

REPO = Path(__file__).parents[2]
ARTIFACTS = REPO / "test-artifacts" / "dashboard"
CHROMIUM = ("chromium", "/usr/bin/chromium")
CHROMEDRIVER = ("chromedriver", "/usr/bin/chromedriver")
INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"
START_TIMEOUT_S = 120
PAGE_TIMEOUT_S = 90


def found(candidates: tuple[str, ...]) -> str | None:
    return next((path for name in candidates if (path := shutil.which(name))), None)


def browser_or_skip() -> tuple[str, str]:
    chromium, driver = found(CHROMIUM), found(CHROMEDRIVER)
    if chromium and driver:
        return chromium, driver
    missing = " and ".join(name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path)
    reason = f"{missing} not installed; install with: {INSTALL}"
    if under_ci():
        pytest.fail(f"CI=true: the browser test must run, but {reason}")
    pytest.skip(reason)


def wait_until_healthy(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=5) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        assert server.poll() is None, f"mmops dashboard exited with {server.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"mmops dashboard did not answer in {START_TIMEOUT_S} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


@pytest.fixture
def dashboard_server(promotion_workdir, tmp_path: Path):
    port, log = free_port(), tmp_path / "dashboard.log"
    with log.open("w") as output:
        server = subprocess.Popen(
            [sys.executable, "-m", "mmops", "dashboard", "--workdir", str(promotion_workdir.path), "--port", str(port)],
            stdout=output, stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(server, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def browser():
    chromium, driver_path = browser_or_skip()
    if not under_ci():
        pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e '.[dev]'")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1440,2400"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver, texts: list[str], page: str) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d) -> bool:
        body = d.find_element(By.TAG_NAME, "body").text
        return all(text in body for text in texts)

    try:
        WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.5).until(shown)
    except TimeoutException:
        body = driver.find_element(By.TAG_NAME, "body").text
        pytest.fail(f"the {page} page did not show {texts} in {PAGE_TIMEOUT_S} s; it shows:\n{body[:3000]}")


def wait_for(driver, script: str, what: str) -> None:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(driver, PAGE_TIMEOUT_S, poll_frequency=0.5).until(lambda d: d.execute_script(script))
    except TimeoutException:
        pytest.fail(f"{what} did not appear in {PAGE_TIMEOUT_S} s")


def screenshot(driver, folder: Path, name: str, capsys: pytest.CaptureFixture) -> Path:
    time.sleep(1)  # let the last element finish its transition
    path = folder / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"could not save {path}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    copy = shutil.copyfile(path, ARTIFACTS / path.name)
    with capsys.disabled():  # shown in the test output even when pytest captures it
        print(f"\ndashboard screenshot: {path} (copied to {copy})", end="")
    return Path(copy)


# The cells of every st.dataframe on the page, row by row: the grid is drawn on a canvas, with an accessible table beside it.
TABLE_ROWS = """const rows = [...document.querySelectorAll('[data-testid="stDataFrame"] table tr')]
    .map(row => [...row.querySelectorAll('td, th')].map(cell => cell.textContent.trim()));"""


def type_into(driver, label: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.CSS_SELECTOR, f'input[aria-label="{label}"]').send_keys(text)


def press(driver, label: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//button[normalize-space(.)='{label}']").click()


def test_every_page_renders_in_chromium_and_a_signed_in_user_rolls_back_on_the_promote_page(
    dashboard_server, browser, promotion_workdir, tmp_path, capsys
):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    model, production, earlier = promotion_workdir.model, promotion_workdir.production, promotion_workdir.earlier

    browser.get(f"{dashboard_server}/lineage")
    wait_for_text(browser, ["Lineage", f"Production model: {model} v{production}"], "lineage")
    wait_for(browser, """
        const svg = document.querySelector('[data-testid="stGraphVizChart"] svg');
        return svg !== null && svg.textContent.includes('stage instruct');""", "the lineage graph drawn as SVG")
    saved = [screenshot(browser, shots, "lineage", capsys)]

    pages = {  # name: (URL path, texts the page must show); Models is the default page, at /
        "models": ("", ["Models", "production version", f"v{production}", "Alias events"]),
        "runs": ("runs", ["Runs", "Metric curves", "stage instruct", "Recipe diff", "seed: 2"]),
        "data": ("data", ["Data", "test_000000", "human:"]),
    }
    for page, (url_path, texts) in pages.items():
        browser.get(f"{dashboard_server}/{url_path}")
        wait_for_text(browser, texts, page)
        if page == "data":
            wait_for(browser, "const imgs = [...document.querySelectorAll('[data-testid=\"stImage\"] img')];"
                              "return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0);", "the sample images")
        saved.append(screenshot(browser, shots, page, capsys))

    user = PROMOTER
    browser.get(f"{dashboard_server}/promote")
    wait_for_text(browser, ["Promote", "production version", "Pending promotion requests", "Last alias events", "Sign in"], "promote")
    type_into(browser, "user name", user)
    type_into(browser, "token", promotion_workdir.tokens[user])
    press(browser, "Sign in")
    wait_for_text(browser, [f"Signed in as {user}", f"Returns production from v{production} to v{earlier}"], "promote (signed in)")
    reason = "rolled back from the browser test"
    type_into(browser, "reason for the rollback", reason)
    press(browser, "Roll back")
    wait_for_text(browser, [f"production rolled back to v{earlier} (from v{production}), by {user}"], "promote (rolled back)")
    wait_for(browser, "return document.querySelector('input[aria-label=\"reason for the rollback\"]').value === '';",
             "the rollback form emptied")
    saved.append(screenshot(browser, shots, "promote", capsys))

    browser.get(dashboard_server)
    wait_for_text(browser, ["Models", "Alias events", f"v{earlier}"], "models (after the rollback)")
    rollback_row = ["production", "rollback", earlier, production, user, reason]
    wait_for(browser, TABLE_ROWS + f"const want = JSON.stringify({json.dumps(rollback_row)});"
                                   "return rows.some(row => JSON.stringify(row.slice(1)) === want);",
             "the rollback in the Models page's alias events")
    assert all(path.stat().st_size > 10_000 for path in saved), "a screenshot is too small to show a page"
