"""Example extension files for ``--extensions FILE`` (each is importable as a plain file too)."""
