"""Root conftest: keeps the repository's own test run self-contained.

The harness's tests live in tests/ (see pyproject's testpaths). The scenario suites under
suites/ are collected by the gateprobe pytest plugin once it exists (issue: scenario engine).
"""
