"""Command-line shim: ``python -m pipeline.verify``.  Nothing may import this module; the command
lives in :mod:`pipeline.cli.verify`."""

if __name__ == "__main__":
    from pipeline.cli.verify import main

    raise SystemExit(main())
