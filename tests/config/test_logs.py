"""The ``LOGGING`` setting built from LOG_FORMAT and LOG_LEVEL."""

import logging

import pytest

from config.environment import ConfigurationError
from config.logs import DropClientErrors, DropRequestLines, logging_config


def test_a_bad_log_format_or_level_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="LOG_FORMAT='xml'"):
        logging_config(fmt="xml", level="INFO")
    with pytest.raises(ConfigurationError, match="LOG_LEVEL='LOUD'"):
        logging_config(fmt="json", level="LOUD")


def server_record(msg, *args, **extra):
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_runservers_request_lines_are_left_to_the_correlation_middleware():
    # given
    keep = DropRequestLines().filter
    request_line = server_record('"%s" %s %s', "GET / HTTP/1.1", "200", "10", status_code=200)
    https = server_record(
        "You're accessing the development server over HTTPS, but it only supports HTTP.",
        status_code=500,
    )
    broken_pipe = server_record("- Broken pipe from %s", ("127.0.0.1", 5000))
    # then
    assert not keep(request_line)
    assert keep(https)
    assert keep(broken_pipe)


def test_djangos_4xx_warnings_are_left_to_the_correlation_middleware():
    keep = DropClientErrors().filter
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "x", (), None)
    for status, kept in ((404, False), (400, False), (405, False), (500, True), (503, True)):
        record.status_code = status
        assert keep(record) is kept, status
    del record.status_code
    assert keep(record)
