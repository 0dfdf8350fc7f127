"""The parts of `make e2e` (scripts/e2e.py), one job per module.

- ``common``: where the run keeps its files (``WORK``), the DAG ids and emulator routes, ``say`` and ``yes``
- ``processes``: processes and sockets, read from /proc; waiting for things
- ``deployment``: PostgreSQL, Redis, the emulator and Airflow on 127.0.0.1, and Airflow's environment
- ``api``: Airflow's REST API, and Signzy's as a user checks it
- ``kills``: SIGKILLs aimed at the processes whose paid POSTs the emulator holds
- ``scenario_load``, ``scenario_paid_calls``, ``scenario_batch``, ``scenario_outage``: the runs and their figures

scripts/e2e_events.py and benchmarks/deferred_sensors.py reuse the deployment: they set ``common.WORK``.
"""
