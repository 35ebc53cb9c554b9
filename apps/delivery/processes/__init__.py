"""Process tools that run beside Django, and import nothing from it, so each starts in
milliseconds:

- :mod:`.supervise`: runs the worker so that stopping it never kills a running task
  behind its back (the Procfile and docker-compose run the worker under it);
- :mod:`.health`: one health check per process (web, worker, beat), for containers;
- :mod:`.brokers`: the development brokers, for honcho and the tests.
"""
