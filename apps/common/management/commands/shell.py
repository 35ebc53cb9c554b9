"""``manage.py shell``, whose ``-c`` prints only what the command prints.

Django 5.2's shell announces its automatic imports ("11 objects imported automatically")
on standard output, also before a ``-c`` command, whose output is then no longer just
its own: ``shell -c "print(add.delay(5, 10).get())"`` must print ``15``. The interactive
shell still says it.
"""

from django.core.management.commands import shell


class Command(shell.Command):
    def get_namespace(self, **options):
        if options.get("command"):
            options = {**options, "verbosity": 0}
        return super().get_namespace(**options)
