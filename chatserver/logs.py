"""Logging of failures without leaking: one line by default, the traceback only at DEBUG.

A traceback (and an exception's message) can carry another client's data, so
by default the log names only where it failed and the kind of exception.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["log_failure"]


def log_failure(logger: logging.Logger, message: str, *args: object) -> None:
    """Log the exception being handled, as one ERROR line."""
    exc = sys.exc_info()[1]
    kind = type(exc).__name__ if exc is not None else "unknown error"
    logger.error(message + " (%s)", *args, kind, exc_info=logger.isEnabledFor(logging.DEBUG))
