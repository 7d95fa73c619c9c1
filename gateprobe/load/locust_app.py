"""Everything a locustfile needs for a gateprobe load run, built from the environment.

    from gateprobe.load.locust_app import build
    globals().update(build())

``build()`` reads the settings (``settings.py``), wires the ``Runtime`` to Locust's events
and returns the user classes of the profile's request mix, plus ``ProfileShape`` when the
profile has a shape (a step, a spike or stages). Imported only inside Locust processes.
"""

from __future__ import annotations

from typing import Any

from locust import LoadTestShape

from gateprobe.load.profile import LoadProfile, Shape
from gateprobe.load.runtime import Runtime
from gateprobe.load.settings import settings_from_env
from gateprobe.load.users import user_class_for

__all__ = ["build", "shape_class_for"]


def shape_class_for(profile: LoadProfile) -> type[LoadTestShape] | None:
    if profile.shape is None:
        return None
    shape: Shape = profile.shape
    run_time = profile.run_time

    class ProfileShape(LoadTestShape):
        """The profile's user count over time; stops after warmup + duration."""

        abstract = False

        def tick(self) -> tuple[int, float] | None:
            elapsed = self.get_run_time()
            if elapsed >= run_time:
                return None
            return shape.at(elapsed)

    return ProfileShape


def build() -> dict[str, Any]:
    settings = settings_from_env()
    runtime = Runtime(settings)
    runtime.install()
    host = settings.target.base_url
    exported: dict[str, Any] = {}
    for spec in settings.profile.requests:
        cls = user_class_for(spec, host, runtime)
        exported[cls.__name__] = cls
    shape = shape_class_for(settings.profile)
    if shape is not None:
        exported["ProfileShape"] = shape
    exported["gateprobe_runtime"] = runtime
    return exported
