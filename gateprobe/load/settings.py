"""What a Locust process of a load run needs to know, passed in the environment.

``gateprobe load`` sets these for the Locust processes it starts; set them yourself to use
``locust -f loadtests/locustfile.py`` directly (every one has a default):

    GATEPROBE_LOAD_PROFILE     profile name (bundled) or file; default chat-steady
    GATEPROBE_LOAD_OVERRIDES   JSON of command-line overrides (users, rate, slo, ...)
    GATEPROBE_LOAD_TARGET      target profile file; default the bundled mock's
                               (``fixtures/targets/mock.yaml``, keys from its variables)
    GATEPROBE_LOAD_REPORT_DIR  where requests.jsonl, summary.json and progress.json go;
                               default reports/load/<run-id>
    GATEPROBE_LOAD_RUN_ID      the run id; default a new one
    GATEPROBE_LOAD_PROGRESS    "stderr" prints the progress line (standalone Locust runs)
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateprobe.errors import UsageError
from gateprobe.load.profile import LoadProfile, load_profile
from gateprobe.target import Target, load_target

__all__ = ["ENV", "RunSettings", "new_run_id", "settings_from_env"]

ENV = {
    "profile": "GATEPROBE_LOAD_PROFILE",
    "overrides": "GATEPROBE_LOAD_OVERRIDES",
    "target": "GATEPROBE_LOAD_TARGET",
    "report_dir": "GATEPROBE_LOAD_REPORT_DIR",
    "run_id": "GATEPROBE_LOAD_RUN_ID",
    "progress": "GATEPROBE_LOAD_PROGRESS",
}


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass(frozen=True)
class RunSettings:
    profile: LoadProfile
    target: Target
    report_dir: Path
    run_id: str
    progress_to_stderr: bool
    slo: Mapping[str, float]  # target's, then profile's, then the command line's


def profile_keys(profile: LoadProfile) -> set[str]:
    """The target's key kinds a load run sends with: only these must be set."""
    return {request.key for request in profile.requests}


def settings_from_env(environ: Mapping[str, str] | None = None) -> RunSettings:
    env = os.environ if environ is None else environ
    overrides: dict[str, Any] = {}
    raw = env.get(ENV["overrides"])
    if raw:
        try:
            overrides = json.loads(raw)
        except ValueError:
            raise UsageError(f"{ENV['overrides']} is not JSON") from None
    profile = load_profile(env.get(ENV["profile"]) or "chat-steady").with_overrides(overrides)
    from gateprobe.provision import MOCK_TARGET

    target = load_target(
        env.get(ENV["target"]) or MOCK_TARGET, env, needed_keys=profile_keys(profile)
    )
    run_id = env.get(ENV["run_id"]) or new_run_id()
    report_dir = Path(env.get(ENV["report_dir"]) or Path("reports") / "load" / run_id)
    slo = {**target.slo, **profile.slo}
    return RunSettings(
        profile=profile,
        target=target,
        report_dir=report_dir,
        run_id=run_id,
        progress_to_stderr=env.get(ENV["progress"]) == "stderr",
        slo=slo,
    )
