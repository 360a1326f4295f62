"""Allows `python -m chatclient`."""

from chatclient.cli import main

raise SystemExit(main())
