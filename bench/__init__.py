"""The drain benchmark: ``python -m bench`` puts the same task systems side by side on
the same brokers, and says how fast each empties a full queue and what CPU it spends.

Each run pre-loads N ``add(1, 1)`` messages with the system's own client while no
worker runs, then starts the system's worker and watches the broker from outside:

- the clock starts when the queue first holds fewer than N messages, so the worker's
  boot is left out, and stops when it holds none and, on Redis, nothing is left
  unacknowledged (kombu's ``unacked`` hash; Dramatiq's ``__acks__`` sets). On RabbitMQ
  only the ready count is cheap to read: the clock stops at 0 ready, when at most a
  prefetch window of no-op tasks is still in flight;
- CPU is the worker's whole process tree (the worker and every descendant), read from
  ``/proc`` when the clock starts and stops; the broker's own CPU is recorded apart.

The systems (:mod:`bench.systems`): ``floor``, the broker alone moving the messages
with its plain client; ``celery``, bare Celery with its defaults (:mod:`bench.bare`);
``cookiecutter``, Celery configured as cookiecutter-django configures it
(:mod:`bench.cookiecutter`); ``dramatiq``, Dramatiq's defaults
(:mod:`bench.dramatiq_app`); ``conveyor``, this project as shipped (its own task, keeping no
result as a task does by default, the Procfile's worker command); ``conveyor-results``,
the same with ``add`` keeping its result as it does for its callers; the ablations
``conveyor-classic``, ``conveyor-prefetch4`` and both, run only when named (what the
quorum queue and one message per process cost). Repetitions are
interleaved (every repetition runs every broker and every system once), brokers are
throwaway servers started once per run and emptied between runs. :mod:`bench.measure`
holds the clock and the CPU readings.
"""
