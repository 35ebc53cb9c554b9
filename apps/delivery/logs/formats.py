"""The two log formats, and the JSON stand-in for stdout and stderr.

- :class:`JsonFormatter` (``LOG_FORMAT=json``): every record is one JSON object on one
  line (python-json-logger), tracebacks included;
- :class:`ConsoleFormatter` (``console``): one readable line with the same fields;
- :class:`JsonLines`: in JSON mode, whatever is *printed* rather than logged (Celery's
  shutdown notice, beat's banner, a stray ``print``) becomes a JSON line as well.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

from .context import mask_passwords, process_role


class JsonFormatter(BaseJsonFormatter):
    """timestamp, level, logger, message, process, then the context and extra fields."""

    FIRST = (
        "timestamp",
        "level",
        "logger",
        "message",
        "process",
        "correlation_id",
        "task_id",
        "task_name",
        "retries",
        "worker",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("timestamp", True)
        kwargs.setdefault(
            "rename_fields", {"levelname": "level", "name": "logger", "process_role": "process"}
        )
        kwargs.setdefault("json_ensure_ascii", False)
        super().__init__("%(levelname)s %(name)s %(message)s", *args, **kwargs)

    def add_fields(self, log_data, record, message_dict):
        super().add_fields(log_data, record, message_dict)
        # Celery adds its own copy of the traceback to "data"; exc_info has it already.
        data = log_data.get("data")
        if isinstance(data, dict) and record.exc_info and "traceback" in data:
            log_data["data"] = {k: v for k, v in data.items() if k != "traceback"}
        # The same fields first in every line, then whatever the record adds.
        fields = dict(log_data)
        log_data.clear()
        for name in self.FIRST:
            if name in fields:
                log_data[name] = fields.pop(name)
        log_data.update(fields)


class ConsoleFormatter(logging.Formatter):
    """One readable line: time, level, process, logger, message, then the context."""

    CONTEXT = ("task_name", "task_id", "retries", "correlation_id")

    def __init__(self, *args, **kwargs):
        super().__init__("%(asctime)s %(levelname)-7s %(process_role)-6s %(name)s: %(message)s")

    def formatTime(self, record, datefmt=None):
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.strftime("%H:%M:%S.") + "%03d" % record.msecs

    def format(self, record):
        record.__dict__.setdefault("process_role", process_role())
        line = super().format(record)
        context = " ".join(
            "%s=%s" % (name, record.__dict__[name])
            for name in self.CONTEXT
            if record.__dict__.get(name) not in (None, "")
        )
        if not context:
            return line
        head, newline, rest = line.partition("\n")
        return "%s  [%s]%s%s" % (head, context, newline, rest)


class JsonLines:
    """Stands in for stdout or stderr in JSON mode.

    JSON lines pass through; any other line (a ``print``, Celery's shutdown notice)
    becomes a JSON record. Writes go straight to the file descriptor, without locks, as
    Celery prints from signal handlers.
    """

    def __init__(self, fd: int, *, level: str, logger: str):
        self.fd = fd
        self.level = level
        self.logger = logger
        self.pending = ""
        self.encoding = "utf-8"
        self.errors = "replace"

    @classmethod
    def install(cls) -> None:
        if isinstance(sys.stdout, cls):
            return
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout = sys.__stdout__ = cls(1, level="INFO", logger="stdout")
        sys.stderr = sys.__stderr__ = cls(2, level="WARNING", logger="stderr")

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        if not line.strip():
            return
        if not (line.startswith("{") and _is_json(line)):
            line = json.dumps(
                {
                    "timestamp": datetime.now(tz=UTC).isoformat(),
                    "level": self.level,
                    "logger": self.logger,
                    "message": mask_passwords(line.rstrip()),
                    "process": process_role(),
                },
                ensure_ascii=False,
            )
        data = (line + "\n").encode("utf-8", "replace")
        while data:
            data = data[os.write(self.fd, data) :]

    def flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            self._emit(line)

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return False

    def writable(self) -> bool:
        return True


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
