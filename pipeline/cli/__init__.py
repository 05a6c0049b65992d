"""Command-line tools: ``python -m pipeline.export`` (and later lower, verify, inspect).

Each tool is ``pipeline.cli.<name>.main(argv) -> int``; :mod:`pipeline.cli.common` holds the
shared plumbing (logging flags, one-line errors, progress).
"""
