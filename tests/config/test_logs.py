"""The ``LOGGING`` setting built from LOG_FORMAT and LOG_LEVEL."""

import pytest

from config.environment import ConfigurationError
from config.logs import logging_config


def test_a_bad_log_format_or_level_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="LOG_FORMAT='xml'"):
        logging_config(fmt="xml", level="INFO")
    with pytest.raises(ConfigurationError, match="LOG_LEVEL='LOUD'"):
        logging_config(fmt="json", level="LOUD")
