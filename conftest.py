"""Puts the repository root on sys.path for a plain `pytest` too, so tests can import `reference`."""
