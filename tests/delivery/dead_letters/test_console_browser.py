"""The operator console in a real browser (headless Chromium, through chromedriver), as
an operator uses it: a read-only user looks, filters and reads; an operator selects,
replays or purges after confirming, replays everything matching a filter, and finds each
action recorded. Screenshots of each step go to ``SCREENSHOT_DIR`` (CI keeps them; default
``.run/screenshots``)."""

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from apps.delivery.dead_letters import dead_letter_box
from apps.delivery.models import TaskFailure
from apps.payments.models import Payment
from apps.payments.tasks import process_payment
from tests.delivery.dead_letters.conftest import PASSWORD, staff
from tests.delivery.dead_letters.test_dead_letters import dead_lettered
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


def absent(driver, selector: str) -> bool:
    """Whether the loaded page has no element matching ``selector``, answered at once
    rather than after the implicit wait."""
    implicit = driver.timeouts.implicit_wait
    driver.implicitly_wait(0)
    try:
        return not driver.find_elements(By.CSS_SELECTOR, selector)
    finally:
        driver.implicitly_wait(implicit)


def notes(driver) -> list[tuple[str, str]]:
    """The page's messages, as (level, text)."""
    return [
        (note.get_attribute("class"), note.text)
        for note in driver.find_elements(By.CSS_SELECTOR, ".messagelist li")
    ]


def audit(driver) -> list[list[str]]:
    """The operator actions shown, newest first: when, who, what, how many, selection."""
    return [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        for row in driver.find_elements(By.CSS_SELECTOR, "#operator-actions tbody tr")
    ]


def confirmation(driver):
    """The confirmation form, once its page has replaced the list."""
    return wait(driver, lambda d: d.find_elements(By.ID, "confirm"))[0]


def summary(driver) -> str:
    return driver.find_element(By.ID, "summary").text


def left_in_the_box() -> set[str]:
    """The ids of the dead letters the broker holds."""
    with dead_letter_box() as box:
        return {letter.id for letter in box.list()}


def forbidden_post(driver, url: str, fields: dict) -> int:
    """POST ``fields`` to ``url`` with the page's session and CSRF token; the status."""
    return driver.execute_async_script(
        """
        const [url, fields, done] = arguments;
        const body = new FormData();
        body.append(
            "csrfmiddlewaretoken",
            document.querySelector("input[name=csrfmiddlewaretoken]").value,
        );
        for (const [name, value] of Object.entries(fields)) body.append(name, value);
        fetch(url, {method: "POST", body, credentials: "same-origin", redirect: "manual"})
            .then((answer) => done(answer.status), (error) => done(String(error)));
        """,
        url,
        fields,
    )


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


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)
def test_an_operator_replays_everything_matching_a_filter_in_the_browser(
    broker, dead_letters, start_web, start_worker, make_payment, browser
):
    """An operator filters the dead letters by task and replays every one matching: the
    confirmation counts the matching ones, not all; the transient failures go back to
    their queue and are processed, a permanent failure among them stays until the
    operator ticks it explicitly, the dead letters of other tasks stay, and each replay
    is recorded with its count."""
    payments, results = dead_letters
    worker = start_worker()
    declined = make_payment(source="tok_decline")
    declined_task = process_payment.delay(str(declined.id))
    worker.wait_for(r"failed for good after 0 retries \(CardDeclined", timeout=60)
    dead_lettered(broker, 4)
    staff("operator", "view_dead_letters", "operate_dead_letters")
    web = start_web()
    transient = {results[0].id, results[1].id}

    log_in(browser, web, "operator")
    assert len(rows(browser)) == 4
    assert "4 of 4 dead letter(s)." in summary(browser)
    shot(browser, "0-operator-list")
    # filters by task: the three payments match, the add does not
    Select(browser.find_element(By.NAME, "task")).select_by_visible_text(process_payment.name)
    browser.find_element(By.CSS_SELECTOR, "#filters button[type=submit]").click()
    wait(
        browser,
        lambda d: "task=" in d.current_url and "3 of 4 dead letter(s) match" in summary(d),
    )
    assert len(rows(browser)) == 3
    assert sum("permanent" in row for row in rows(browser)) == 1
    every = browser.find_element(By.CSS_SELECTOR, "button[value='replay:all']")
    assert every.text == "Replay all 3 matching"
    shot(browser, "1-operator-filtered")
    # replays all matching: the confirmation says three, one of them permanent
    every.click()
    confirm = confirmation(browser)
    assert "Replay 3 dead letter(s): every one matching the filter now" in confirm.text
    warning = confirm.find_element(By.CSS_SELECTOR, ".errornote").text
    assert "1 of them failed permanently" in warning
    assert not confirm.find_element(By.NAME, "include_permanent").is_selected()
    shot(browser, "2-operator-confirm-all")
    confirm.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, lambda d: d.find_elements(By.ID, "summary"))
    assert notes(browser) == [
        ("success", "2 dead letter(s) replayed."),
        (
            "warning",
            "1 permanent failure(s) left in the queue: confirm them explicitly to replay them.",
        ),
    ]
    assert "task=" in browser.current_url
    assert "1 of 2 dead letter(s) match the filter." in summary(browser)
    (row,) = rows(browser)
    assert declined_task.id in row
    assert "permanent" in row
    entry = audit(browser)[0]
    assert entry[1:4] == ["operator", "Replay", "2"]
    assert process_payment.name in entry[4]
    shot(browser, "3-operator-replayed-transient")
    assert left_in_the_box() == {declined_task.id, results[2].id}
    # the healed gateway takes the two replayed payments
    worker.wait_for(r"process_payment\[.*\] succeeded", count=2, timeout=60)
    for payment in payments:
        payment.refresh_from_db()
        assert payment.status == Payment.Status.PROCESSED
    assert not TaskFailure.objects.filter(task_id__in=transient).exists()

    # the permanent failure goes only when ticked
    browser.find_element(By.CSS_SELECTOR, "button[value='replay:all']").click()
    confirm = confirmation(browser)
    assert "Replay 1 dead letter(s): every one matching the filter now" in confirm.text
    confirm.find_element(By.NAME, "include_permanent").click()
    assert confirm.find_element(By.NAME, "include_permanent").is_selected()
    shot(browser, "4-operator-confirm-permanent")
    confirm.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, lambda d: d.find_elements(By.ID, "summary"))
    assert notes(browser) == [("success", "1 dead letter(s) replayed.")]
    assert "0 of 1 dead letter(s) match the filter." in summary(browser)
    assert "No dead letter matches the filter." in browser.find_element(By.ID, "content").text
    assert [entry[1:4] for entry in audit(browser)] == [
        ["operator", "Replay", "1"],
        ["operator", "Replay", "2"],
    ]
    shot(browser, "5-operator-replayed-permanent")
    assert left_in_the_box() == {results[2].id}
    # the declined payment is not charged again
    worker.wait_for(r"Payment %s failed earlier" % declined.id, timeout=60)
    declined.refresh_from_db()
    assert declined.status == Payment.Status.FAILED


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"], indirect=True)
def test_an_operator_purges_a_dead_letter_and_a_read_only_user_cannot(
    broker, dead_letters, start_web, browser
):
    """A read-only user sees no purge or replay control and a purge posted with their
    session is refused; an operator selects one dead letter, purges it after confirming,
    and it leaves the queue, the list and the failure facts, recorded as purged 1."""
    _, results = dead_letters
    gone, kept = results[0].id, {results[1].id, results[2].id}
    staff("viewer", "view_dead_letters")
    staff("operator", "view_dead_letters", "operate_dead_letters")
    web = start_web()

    # the read-only user: no controls on the list nor on a dead letter's page
    log_in(browser, web, "viewer")
    assert len(rows(browser)) == 3
    assert absent(browser, "button[name=action]")
    assert absent(browser, "#dead-letters input[name=id]")
    shot(browser, "0-viewer-list")
    # and a purge posted anyway, confirmed or of everything, is refused
    for fields in (
        {"action": "purge", "id": gone, "confirmed": "1"},
        {"action": "purge:all"},
        {"action": "purge", "all": "1", "confirmed": "1"},
    ):
        assert forbidden_post(browser, web.url + URL, fields) == 403
    browser.get("%s%s%s/" % (web.url, URL, gone))
    assert "Traceback" in browser.find_element(By.ID, "traceback").text
    assert absent(browser, "button[name=action]")
    shot(browser, "1-viewer-detail")
    assert left_in_the_box() == {gone, *kept}

    # the operator selects one dead letter and purges it
    log_in(browser, web, "operator")
    browser.find_element(By.CSS_SELECTOR, "input[name=id][value='%s']" % gone).click()
    browser.find_element(By.CSS_SELECTOR, "button[value=purge]").click()
    confirm = confirmation(browser)
    assert "Purge 1 dead letter(s)?" in confirm.text
    assert "They are deleted for good." in confirm.text
    assert absent(browser, "input[name=include_permanent]")
    shot(browser, "2-operator-confirm-purge")
    confirm.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(browser, lambda d: d.find_elements(By.ID, "summary"))
    assert notes(browser) == [("success", "1 dead letter(s) purged.")]
    assert "2 of 2 dead letter(s)." in summary(browser)
    assert len(rows(browser)) == 2
    assert not any(gone in row for row in rows(browser))
    (entry,) = audit(browser)
    assert entry[1:4] == ["operator", "Purge", "1"]
    assert gone in entry[4]
    shot(browser, "3-operator-purged")
    assert left_in_the_box() == kept
    assert not TaskFailure.objects.filter(task_id=gone).exists()
