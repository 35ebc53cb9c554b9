"""Structured logs for web, worker and beat: one line per record, with the context of
the process, the request and the task.

- :mod:`.context`: the correlation id, the process role, the current task, and the
  filter that adds them (and masks passwords) on every record;
- :mod:`.formats`: JSON lines or a readable console line, and the JSON stand-in for
  stdout and stderr;
- :mod:`.setup`: applies the ``LOGGING`` setting (built by :mod:`config.logs`).
"""
