"""The seed's add task, end to end through a real broker and a real worker."""

import pytest

from apps.users.tasks import add


def test_add_runs_on_a_worker_and_returns_the_sum(broker, start_worker):
    # given
    worker = start_worker()
    # when
    result = add.delay(5, 10)
    # then
    assert result.get(timeout=20) == 15
    worker.wait_for(r"Adding 5 \+ 10")
    assert result.id in worker.wait_for(r"succeeded in .*: 15")[0]


def test_add_refuses_what_is_not_a_number():
    with pytest.raises(TypeError, match="add\\(\\) takes numbers; x is 'a'"):
        add.run("a", 1)
