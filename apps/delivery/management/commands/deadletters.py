"""``manage.py deadletters``: inspect, replay and purge the dead-letter queue."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from apps.delivery.dead_letters import DeadLetterNotFound, dead_letter_box


def age_text(age) -> str:
    if age is None:
        return "?"
    seconds = int(age.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


class Command(BaseCommand):
    help = (
        "Inspect, replay and purge the dead-letter queue (Redis or RabbitMQ alike). "
        "ACTION is list, show, replay or purge; `deadletters ACTION --help` tells more."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
        listing = actions.add_parser(
            "list", help="a table of the dead letters: id, task, reason, error, age"
        )
        listing.add_argument("--limit", type=int, default=1000, help="at most this many")
        self._format(listing, "table", "a table (default), or a JSON list of objects")
        show = actions.add_parser("show", help="everything about one dead letter, as JSON")
        show.add_argument("id", help="the dead letter's id (its task id)")
        replay = actions.add_parser(
            "replay", help="republish to the original queue with a fresh retry budget"
        )
        self._selection(replay)
        replay.add_argument("--task", help="with --all: only dead letters of this task")
        self._format(replay, "text", 'a summary line (default), or JSON: {"replayed": [ids]}')
        purge = actions.add_parser("purge", help="delete dead letters for good")
        self._selection(purge)
        purge.add_argument(
            "--no-input",
            "--noinput",
            "--yes",
            dest="no_input",
            action="store_true",
            help="do not ask for confirmation (--yes is an alias)",
        )
        self._format(purge, "text", 'a summary line (default), or JSON: {"purged": [ids]}')

    @staticmethod
    def _selection(parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("id", nargs="?", help="the dead letter's id (its task id)")
        which.add_argument("--all", action="store_true", help="every dead letter")

    @staticmethod
    def _format(parser, default: str, what: str):
        parser.add_argument("--format", choices=[default, "json"], default=default, help=what)

    def handle(self, *args, action, **options):
        with dead_letter_box() as box:
            getattr(self, "do_%s" % action)(box, **options)

    def do_list(self, box, *, limit, format, **options):
        letters = box.list(limit=limit)
        if format == "json":
            self.stdout.write(json.dumps([_summary(letter) for letter in letters], default=str))
            return
        rows = [("ID", "TASK", "REASON", "ERROR", "AGE")] + [
            (
                letter.id,
                letter.task_name or "-",
                letter.reason or "-",
                _one_line(letter.error, 70),
                age_text(letter.age),
            )
            for letter in letters
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
            self.stdout.write("  ".join([*cells, row[4]]))
        self.stdout.write(_count(letters, ""))

    def do_show(self, box, *, id, **options):
        try:
            letter = box.get(id)
        except DeadLetterNotFound:
            raise CommandError("No dead letter %s." % id) from None
        self.stdout.write(json.dumps(letter.as_dict(), indent=2, default=str))

    def do_replay(self, box, *, id, all, task, format, **options):
        if task and not all:
            raise CommandError("--task goes with --all.")
        replayed = box.replay(
            ids=None if all else [id], task=task, progress=self._progress(box, all, "replayed")
        )
        if id and not replayed:
            raise CommandError("No dead letter %s." % id)
        self._done(replayed, "replayed", format)

    def do_purge(self, box, *, id, all, no_input, format, **options):
        what = "every dead letter (%d now)" % box.count() if all else "dead letter %s" % id
        if not no_input and not _confirmed("Purge %s for good? [y/N] " % what):
            raise CommandError("Nothing purged.")
        purged = box.purge(ids=None if all else [id], progress=self._progress(box, all, "purged"))
        if id and not purged:
            raise CommandError("No dead letter %s." % id)
        self._done(purged, "purged", format)

    def _done(self, ids: list[str], verb: str, format: str) -> None:
        if format == "json":
            self.stdout.write(json.dumps({verb: ids}))
        else:
            self.stdout.write(_count(ids, " " + verb))

    def _progress(self, box, bulk: bool, verb: str):
        """On a bulk action over more than PROGRESS_EVERY letters: a line on stderr every
        PROGRESS_EVERY letters (stdout keeps the result alone)."""
        if not bulk:
            return None
        total = box.count()
        if total <= PROGRESS_EVERY:
            return None

        def progress(done: int) -> None:
            if done % PROGRESS_EVERY == 0:
                self.stderr.write("%d of %d %s..." % (done, total, verb))

        return progress


#: A bulk replay or purge reports its progress every this many dead letters.
PROGRESS_EVERY = 100


#: What ``list --format json`` tells of each dead letter (``show`` tells everything).
SUMMARY = ("id", "task", "reason", "error", "dead_lettered_at", "args", "kwargs", "retries")


def _summary(letter) -> dict:
    everything = letter.as_dict()
    return {name: everything[name] for name in (*SUMMARY, "replays", "correlation_id")}


def _one_line(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _count(items, verb: str) -> str:
    return "%d dead letter%s%s." % (len(items), "" if len(items) == 1 else "s", verb)


def _confirmed(question: str) -> bool:
    try:
        return input(question).strip().lower() in ("y", "yes")
    except EOFError:
        return False
