"""The Locust file ``gateprobe load`` runs (an installed copy has no loadtests/ directory);
the same two lines as loadtests/locustfile.py."""

from gateprobe.load.locust_app import build

globals().update(build())
