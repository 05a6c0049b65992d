"""``python -m pipeline.inspect`` entry point.  A CLI shim only: nothing imports this module (the
command lives in :mod:`pipeline.cli.inspect`)."""

if __name__ == "__main__":
    from pipeline.cli.inspect import main

    raise SystemExit(main())
