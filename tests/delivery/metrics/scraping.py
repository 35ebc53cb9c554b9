"""Scraping a metrics endpoint as Prometheus does, reading the samples, and checking the
text with Prometheus's own ``promtool``."""

from __future__ import annotations

import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers import wait_until


def scrape(url: str, *, token: str | None = None, timeout: float = 10) -> tuple[int, str]:
    """GET ``url``; its status and text (a refusal's too)."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", "Bearer %s" % token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape_or_none(url: str, **kwargs) -> str | None:
    """The text of a successful scrape; None while the endpoint does not answer 200."""
    try:
        status, text = scrape(url, **kwargs)
    except OSError:
        return None
    return text if status == 200 else None


def scraped_when(url: str, ready, *, token: str | None = None, timeout: float = 60) -> str:
    """The first scrape of ``url`` whose text ``ready`` accepts."""
    return wait_until(
        lambda: (text := scrape_or_none(url, token=token)) is not None and ready(text) and text,
        timeout=timeout,
        interval=0.2,
        what="a scrape of %s with the expected values" % url,
    )


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels) -> float | None:
    """The value of one sample, or None if the exposition does not have it."""
    return samples(text).get((name, frozenset(labels.items())))


def promtool_check(text: str) -> None:
    """``promtool check metrics`` finds nothing to say about ``text``."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail(
            "promtool is not installed: the metrics tests check every endpoint's output with "
            "it (Debian: apt-get install prometheus; .ci/run installs it; the Nix shell has it)."
        )
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert (checked.returncode, checked.stdout + checked.stderr) == (0, ""), text
