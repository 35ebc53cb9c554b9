"""The Celery and kombu releases the overrides were checked against bound what installs."""

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

from apps.delivery.celery_overrides import CHECKED_AGAINST

PYPROJECT = Path(__file__).resolve().parents[3] / "pyproject.toml"


def requirement(package: str) -> str:
    """The version specifiers pyproject.toml gives ``package`` (``>=5.6,<5.8``)."""
    for line in tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]:
        match = re.fullmatch(r"%s(?:\[[\w,]+\])?\s*(.*)" % re.escape(package), line)
        if match:
            return match.group(1).replace(" ", "")
    raise AssertionError("pyproject.toml does not name %s" % package)


def minor(release: str) -> tuple[int, int]:
    major, minor_, *_ = (int(part) for part in release.split("."))
    return major, minor_


@pytest.mark.parametrize("package", sorted(CHECKED_AGAINST))
def test_pyproject_admits_exactly_the_minor_releases_the_overrides_were_checked_against(package):
    oldest, newest = minor(CHECKED_AGAINST[package][0]), minor(CHECKED_AGAINST[package][-1])
    assert requirement(package) == ">=%d.%d,<%d.%d" % (*oldest, newest[0], newest[1] + 1)


@pytest.mark.parametrize("package", sorted(CHECKED_AGAINST))
def test_the_installed_release_is_one_the_overrides_were_checked_against(package):
    checked = {minor(release) for release in CHECKED_AGAINST[package]}
    assert minor(version(package)) in checked
