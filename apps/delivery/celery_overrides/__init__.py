"""Everything Conveyor plugs into Celery and kombu: the code a Celery upgrade can break.

Each module subclasses or hooks a Celery/kombu component, named by a setting. What each
relies on beyond the documented API, checked against the versions in
:data:`CHECKED_AGAINST` (``make test`` runs the newest, ``make test-oldest`` the oldest):

- :mod:`.app` (the app class, ``config/celery.py``): ``Celery.prepare_config``; the
  loader's ``override_backends``.
- :mod:`.consumer` (``worker_consumer``): ``celery.worker.consumer.Consumer`` methods
  ``connect``, ``update_strategies`` and its ``strategies`` dict,
  ``cancel_active_requests`` (the cold shutdown), ``on_unknown_task``,
  ``on_invalid_task``, ``on_unknown_message``, ``on_decode_error``; the task consumer's
  ``channel.qos``; ``app.amqp.queues``.
- :mod:`.database` (``config/celery.py``): ``celery.fixups.django.DjangoWorkerFixup``
  ``close_database``.
- :mod:`.pool` (``worker_pool``): ``prefork.TaskPool.Pool``, ``AsynPool.timers`` and
  ``maintain_pool``; billiard's ``Pool._join_exited_workers`` and ``_pool`` (the
  processes that exited, for the metrics).
- :mod:`.redis_transport` (``broker_transport`` on Redis): ``kombu.transport.redis``
  ``QoS.reject``, ``_delivered``, ``_dirty``, ``unacked_key``, ``unacked_index_key``,
  ``_remove_from_indices``, ``channel.conn_or_acquire``, ``virtual.QoS.ack``;
  ``Channel.from_transport_options``, ``_lookup``, ``_do_restore_message`` (every
  restore passes there) and ``global_keyprefix``; the message envelope kombu stores.
- :mod:`.results` (the ``rpc`` result backend): ``RPCBackend.on_task_call``,
  ``binding``; ``celery._state.task_join_will_block``.
- :mod:`.beat` (``beat_scheduler``): ``PersistentScheduler.apply_async(entry, producer,
  advance)``, ``tick``, ``setup_schedule`` and ``close``; ``ScheduleEntry.total_run_count``;
  ``crontab.remaining_delta``, ``nowfun`` and the fields as written,
  ``crontab._orig_minute`` etc.
- :mod:`.bootsteps` (``app.steps["consumer"]`` and ``["worker"]``): the consumer's
  ``timer`` and ``hostname``; the step ``celery.worker.consumer.tasks:Tasks``; the
  worker's ``concurrency``; ``celery.worker.state``'s ``active_requests``,
  ``reserved_requests`` and (5.7) ``scheduled_requests``, and a request's ``time_start``
  and ``eta`` (the console reports).
- :mod:`.signals`: the ``quiet`` attribute of the worker that ``celeryd_after_setup``
  passes; ``celery.apps.worker.safe_say`` (the shutdown notices); the message headers
  that become attributes of ``task.request`` (the metrics' ``x_published_at``).
- :mod:`.compat56`, on 5.6 only: ``Consumer.on_connection_error_after_connected``,
  ``celery.worker.state.active_requests`` and ``Request.cancel``;
  ``prefork.TaskPool.on_stop``, the event loop's ``_pop_ready``, ``call_soon``,
  ``on_callback_error`` and the promises the consumer queues there;
  ``QoS.restore_visible``, ``Transport.register_with_event_loop``, the cycle's
  ``maybe_restore_messages``; ``rpc.ResultConsumer.reconnect_on_error``.

``pyproject.toml`` caps ``celery`` and ``kombu`` below the release after the newest one
checked (a test holds the two together): a new minor release is taken only once these
have been checked against it and it is added here.

The class paths below are what settings name; on 5.6 they are those of
:mod:`.compat56`. Importing this package imports neither Django nor the classes.
"""

from __future__ import annotations

import celery
import kombu

#: The releases of each package that these overrides were checked against, oldest first.
CHECKED_AGAINST = {"celery": ("5.6.3", "5.7.0"), "kombu": ("5.6.2", "5.7.0")}

#: Celery 5.6 and kombu 5.6 need :mod:`.compat56`.
CELERY_56 = celery.VERSION < (5, 7)
KOMBU_56 = kombu.VERSION < (5, 7)

#: ``CELERY_WORKER_CONSUMER``: dead-letters what it cannot run, releases on cold shutdown.
WORKER_CONSUMER = "%s.%s:Consumer" % (__name__, "compat56.consumer" if CELERY_56 else "consumer")
#: ``CELERY_WORKER_POOL``: prefork, replacing dead processes at once (on 5.6, one that
#: also acknowledges while it stops).
WORKER_POOL = "%s.%s:TaskPool" % (__name__, "compat56.pool" if CELERY_56 else "pool")
#: ``CELERY_BROKER_TRANSPORT`` on Redis: kombu's, with dead-lettering.
REDIS_TRANSPORT = "%s.%s:Transport" % (
    __name__,
    "compat56.redis_transport" if KOMBU_56 else "redis_transport",
)
#: Result backends by URL scheme, in place of Celery's (the app's loader
#: ``override_backends``): an ``rpc://`` whose reply-queue declaration gives up in time
#: (on 5.6, one that also survives a polling timeout).
RESULT_BACKENDS = {
    "rpc": "%s.%s:RPCBackend" % (__name__, "compat56.rpc" if CELERY_56 else "results")
}
