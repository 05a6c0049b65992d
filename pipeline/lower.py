"""``python -m pipeline.lower`` entry point.  A CLI shim only: nothing imports this module
(importing it would rebind the API function ``pipeline.lower`` to this module)."""

if __name__ == "__main__":
    from pipeline.cli.lower import main

    raise SystemExit(main())
