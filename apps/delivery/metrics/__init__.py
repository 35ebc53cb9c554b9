"""Prometheus metrics of web, worker and beat, with the official ``prometheus_client``.

- :mod:`.directory`: each process group's multiprocess directory, prepared before
  prometheus_client is imported (so importing this package imports nothing else);
- :mod:`.instruments`: what processes count as they work (tasks by outcome, retries,
  dead letters by route, publications, durations, enqueue -> start latency);
- :mod:`.collectors`: what the web's ``/metrics`` reads at each scrape (queue depths,
  the outbox's backlog, heartbeat ages), never waiting long on a broker that is down;
- :mod:`.exposition`: who may scrape (``METRICS_TOKEN``), and the HTTP server the
  worker and beat serve their metrics with;
- :mod:`.views`: the web's ``/metrics``.

Where each is served: the web at ``/metrics`` (:func:`.views.metrics`),
the worker on ``WORKER_METRICS_PORT``
(:class:`apps.delivery.celery_overrides.bootsteps.WorkerMetrics`), beat on
``BEAT_METRICS_PORT`` (:mod:`apps.delivery.celery_overrides.signals`).
"""
