"""The operator console in a real browser (headless Chromium, through chromedriver), as
an operator uses it: a read-only user looks, filters and reads; an operator selects,
replays after confirming, and finds the action recorded. Screenshots of each step go to
``SCREENSHOT_DIR`` (CI keeps them; default ``.run/screenshots``)."""

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.delivery.dead_letters.conftest import PASSWORD, staff
from tests.processes import BASE_DIR

URL = "/admin/dead-letters/"
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", BASE_DIR / ".run" / "screenshots"))


def executable(*names: str) -> str:
    for name in names:
        if found := shutil.which(name):
            return found
    raise AssertionError(
        "No %s on PATH: the browser tests need Chromium and chromedriver "
        "(Debian: apt-get install chromium chromium-driver; the Nix shell has them)."
        % " or ".join(names)
    )


@pytest.fixture
def browser(request):
    options = webdriver.ChromeOptions()
    options.binary_location = executable("chromium", "chromium-browser")
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    driver = webdriver.Chrome(
        options=options, service=Service(executable("chromedriver", "chromium.chromedriver"))
    )
    # Generous: CI runs the tests side by side on two cores.
    driver.implicitly_wait(15)
    driver.shots = SCREENSHOTS / request.node.name.replace("[", "-").rstrip("]")
    driver.shots.mkdir(parents=True, exist_ok=True)
    yield driver
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        shot(driver, "failed")
        (driver.shots / "failed.html").write_text(driver.page_source)
        print(
            "\n----- the browser at the failure -----\n%s\n%s" % (driver.current_url, driver.shots)
        )
    driver.quit()


def wait(driver, condition, *, timeout: float = 30):
    """Wait for ``condition(driver)``; an element of the page being replaced meanwhile
    (a form's answer loading) is looked up again."""
    return WebDriverWait(
        driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(driver.shots / ("%s.png" % name)))


def log_in(driver, web, username: str) -> None:
    driver.delete_all_cookies()
    driver.get("%s/admin/login/?next=%s" % (web.url, URL))
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait(driver, lambda d: d.find_elements(By.ID, "summary"))


def rows(driver) -> list[str]:
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#dead-letters tbody tr")]


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_an_operator_and_a_read_only_user_in_the_browser(
    broker, dead_letters, start_web, start_worker, browser
):
    _, results = dead_letters
    staff("viewer", "view_dead_letters")
    staff("operator", "view_dead_letters", "operate_dead_letters")
    web = start_web()
    node = start_worker().hostname.split("@")[0]

    # the read-only user's overview: the three dead letters, the runs that put them
    # there, and the running worker's report
    log_in(browser, web, "viewer")
    browser.get(web.url + "/admin/console/")
    assert "dead_letter 3" in browser.find_element(By.ID, "queues").text
    assert browser.find_element(By.ID, "queues").find_elements(By.CSS_SELECTOR, "svg")
    runs = browser.find_element(By.ID, "task-apps.payments.tasks.process_payment")
    assert runs.find_element(By.CSS_SELECTOR, '[data-hour="dead_lettered"]').text == "2"
    wait(
        browser,
        lambda d: d.refresh() or node in d.find_element(By.ID, "processes").text,
        timeout=60,
    )
    shot(browser, "0-viewer-overview")
    # the dead letters: all three, the permanent one marked, and no buttons
    browser.get(web.url + URL)
    assert len(rows(browser)) == 3
    assert sum("permanent" in row for row in rows(browser)) == 1
    assert not browser.find_elements(By.CSS_SELECTOR, "button[name=action]")
    shot(browser, "1-viewer-list")
    # filters by exception
    Select(browser.find_element(By.NAME, "exception")).select_by_visible_text("GatewayUnavailable")
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(browser, lambda d: "exception=" in d.current_url and len(rows(d)) == 2)
    assert "2 of 3" in browser.find_element(By.ID, "summary").text
    shot(browser, "2-viewer-filtered")
    # and reads the permanent failure's traceback
    browser.get("%s%s%s/" % (web.url, URL, results[2].id))
    assert "TypeError" in browser.find_element(By.ID, "traceback").text
    shot(browser, "3-viewer-detail")

    # the operator selects the two transient failures and replays them
    log_in(browser, web, "operator")
    for result in results[:2]:
        browser.find_element(By.CSS_SELECTOR, "input[name=id][value='%s']" % result.id).click()
    browser.find_element(By.CSS_SELECTOR, "button[value=replay]").click()
    confirm = browser.find_element(By.ID, "confirm")
    assert "Replay 2 dead letter(s)" in confirm.text
    shot(browser, "4-operator-confirm")
    confirm.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, lambda d: d.find_elements(By.ID, "summary"))
    assert (
        "2 dead letter(s) replayed." in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    )
    assert len(rows(browser)) == 1
    audit = browser.find_element(By.CSS_SELECTOR, "#operator-actions tbody tr").text
    assert "operator" in audit
    assert "Replay" in audit
    shot(browser, "5-operator-replayed")
    assert broker.server.queue_length("dead_letter") == 1

    # on a phone-sized screen the page does not overflow: the table scrolls in its box
    browser.set_window_size(390, 844)
    browser.refresh()
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= browser.execute_script("return window.innerWidth")
    shot(browser, "6-operator-phone")
