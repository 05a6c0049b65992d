"""Command-line shim: ``python -m pipeline.export``.  Nothing may import this module (it would
rebind ``pipeline.export``, the API function); the command lives in :mod:`pipeline.cli.export`."""

if __name__ == "__main__":
    from pipeline.cli.export import main

    raise SystemExit(main())
