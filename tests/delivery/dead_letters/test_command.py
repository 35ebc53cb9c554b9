"""``manage.py deadletters`` as Django's own commands behave: help for every option,
``--no-input``, a summary line, progress on a long bulk action."""

import argparse
from io import StringIO

from apps.delivery.management.commands.deadletters import PROGRESS_EVERY, Command


def subcommands():
    parser = Command().create_parser("manage.py", "deadletters")
    (actions,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return actions.choices


def test_every_option_of_every_action_has_help():
    for name, parser in subcommands().items():
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, "deadletters %s %s" % (name, action.dest)


def test_purge_takes_djangos_no_input_and_keeps_yes_as_an_alias():
    purge = subcommands()["purge"]
    for flag in ("--no-input", "--noinput", "--yes"):
        assert purge.parse_args(["--all", flag]).no_input is True
    assert purge.parse_args(["--all"]).no_input is False


class Box:
    def __init__(self, count):
        self.letters = count

    def count(self):
        return self.letters


def test_a_long_bulk_action_reports_progress_on_stderr():
    # given
    stderr = StringIO()
    command = Command(stdout=StringIO(), stderr=stderr)
    # when
    progress = command._progress(Box(2 * PROGRESS_EVERY + 5), True, "replayed")
    for done in range(1, 2 * PROGRESS_EVERY + 6):
        progress(done)
    # then
    assert stderr.getvalue().splitlines() == [
        "%d of %d replayed..." % (PROGRESS_EVERY, 2 * PROGRESS_EVERY + 5),
        "%d of %d replayed..." % (2 * PROGRESS_EVERY, 2 * PROGRESS_EVERY + 5),
    ]


def test_a_short_or_single_action_reports_no_progress():
    command = Command(stdout=StringIO(), stderr=StringIO())
    assert command._progress(Box(PROGRESS_EVERY), True, "purged") is None
    assert command._progress(Box(10 * PROGRESS_EVERY), False, "purged") is None
