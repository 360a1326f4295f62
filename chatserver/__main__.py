"""Allows `python -m chatserver`."""

from chatserver.cli import main

raise SystemExit(main())
