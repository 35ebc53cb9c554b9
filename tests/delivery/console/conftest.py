"""The dead letters of the dead-letter pages' tests, for the overview's too."""

from tests.delivery.dead_letters.conftest import dead_letters  # noqa: F401
