"""Load testing with Locust: LLM latency metrics, profiles, SLO gates, distributed runs.

Safe to import anywhere (no Locust, no gevent):

    profile.py       load profiles (YAML, schemas/load_profile.schema.json)
    slo.py           SLO keys, ``--slo key=value`` parsing, judging a summary
    metrics.py       per-request TTFT / TTST / ITL / TPOT / tokens from a timed stream
    summary.py       percentiles and the run summary from per-request records
    pacing.py        open-loop arrival schedules (constant, Poisson)
    window.py        the measured window: its figures, the shortfall warning, a sleep that
                     outlasts early timers
    progress.py      the one-line progress of a run
    plots.py         PNG plots of a run
    settings.py      what a Locust process of a run reads from its environment
    mock_process.py  the bundled mock in its own process
    launch.py        ``gateprobe load``: runs Locust as a child process
    cli_options.py   the options of ``gateprobe load``

Imported only inside Locust processes (they import locust, which monkey-patches with gevent):

    users.py         FastHttpUser per protocol, reading streams as they arrive
    collector.py     per-request records, the LLM rows in Locust's table, worker -> master
    runtime.py       warmup, arrivals, progress, summary and SLO gate inside Locust
    locust_app.py    builds the users and shape of a profile for a locustfile; keeps the
                     measured window (opens it, ends the run)
    locustfile.py    the Locust file ``gateprobe load`` runs
"""

from __future__ import annotations

__all__: list[str] = []
