"""gateprobe's Locust file: the users of a load profile against a target.

    gateprobe load --profile chat-steady                    # the usual way (see README)
    GATEPROBE_LOAD_PROFILE=mixed-protocols GATEPROBE_LOAD_TARGET=my-gateway.yaml \
        locust -f loadtests/locustfile.py --headless -u 20 -r 20 -t 60s

The settings come from GATEPROBE_LOAD_* environment variables (gateprobe/load/settings.py);
the users, metrics and SLO gate live in gateprobe/load/.
"""

from gateprobe.load.locust_app import build

globals().update(build())
