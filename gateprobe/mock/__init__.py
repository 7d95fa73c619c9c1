"""The bundled mock gateway: a real HTTP server behaving like the seed gateways.

MockConfig    accounts, keys, models, channels, limits, timing, defects (YAML or default)
MockGateway   the ASGI application
MockServer    the app served on 127.0.0.1 and an ephemeral port, in a background thread
DEFECTS       the defect switches that turn the mock into a known-broken gateway
"""

from __future__ import annotations

from gateprobe.mock.app import MockGateway
from gateprobe.mock.config import ConfigError, MockConfig
from gateprobe.mock.defects import DEFECTS
from gateprobe.mock.server import MockServer, serve

__all__ = ["DEFECTS", "ConfigError", "MockConfig", "MockGateway", "MockServer", "serve"]
