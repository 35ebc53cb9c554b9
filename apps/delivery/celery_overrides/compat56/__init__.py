"""What Celery and kombu 5.6 (nixpkgs' versions) lack, and 5.7 does itself.

One module per overridden component, each a subclass of Conveyor's class for 5.7:

- :mod:`.consumer`: on Celery 5.6 an error raised while the worker cancels a running
  task after a lost broker connection (its ``rpc://`` result backend is the broker that
  just went away) escapes and stops the worker;
- :mod:`.pool`: during a warm shutdown Celery 5.6 acknowledges a finished task only once
  its whole pool has exited, a second or two later; a worker killed in between runs it
  again on the next start;
- :mod:`.redis_transport`: kombu 5.6 ignores the restore-sweep options, and hands a dead
  worker's message out again only up to 100 seconds after its visibility timeout;
- :mod:`.rpc`: the ``rpc://`` result backend of Celery 5.6 reconnects each time a wait
  for a result polls a second in vain, and can drop the result meanwhile.

:mod:`apps.delivery.celery_overrides` selects these by version. Dropping 5.6 is deleting
this package and the lines there that name it.
"""
