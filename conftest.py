"""Root conftest of the gateprobe repository.

The ``gateprobe`` pytest plugin comes from the package's ``pytest11`` entry point, and
pyproject.toml sets ``gateprobe_target = "mock"`` with ``testpaths = ["tests", "suites"]``:
so a bare ``pytest`` here runs the harness's own tests and the conformance suites, the
latter against a bundled mock that each pytest process starts and provisions for itself.
Pass ``--gateprobe-target FILE`` to run the suites against another gateway instead.
"""
