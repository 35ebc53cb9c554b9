"""The fault-injection suite: ``make faults`` turns "nothing lost, nothing charged twice"
into a table anyone can reproduce, and ``make faults-quick`` runs a CI-sized version.

It drives a real stack only through its public surfaces (the HTTP API, the Procfile's
worker and beat commands, management commands, Celery's command line, broker tools)
and reads the database only to count at the end:

- :mod:`faults.stack`: throwaway brokers and database, the stack's processes, and the
  faults (SIGKILL of a worker's process tree or pool processes, kill -9 of the broker,
  the broker stopped, warm and cold shutdowns);
- :mod:`faults.scenarios`: what each scenario does and checks;
- :mod:`faults.ledger`: every payment the API acknowledged, accounted for;
- :mod:`faults.bare`: the negative control, bare Celery with its defaults.
"""
