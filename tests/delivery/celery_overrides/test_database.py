"""A worker's pool process keeps its database connection across tasks for as long as
CONN_MAX_AGE says, as Django keeps one across requests."""

import pytest
from django.db import connection

from tests.tasks import database_connections


# The database's rule, not the broker's: one broker is enough.
@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_a_pool_process_keeps_its_connection_as_long_as_conn_max_age_says(broker, start_worker):
    # given: one pool process, connections kept for 60 s (on PostgreSQL; SQLite keeps none)
    start_worker(concurrency=1, env={"CONN_MAX_AGE": "60"})
    # when: it runs five tasks that use the database, one after the other
    counts = [database_connections.delay().get(timeout=30) for _ in range(5)]
    # then
    if connection.vendor == "postgresql":
        assert counts == [1, 1, 1, 1, 1]
    else:
        assert counts == [1, 2, 3, 4, 5]
