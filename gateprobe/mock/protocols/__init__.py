"""Per-protocol request parsers and response writers of the mock gateway."""
