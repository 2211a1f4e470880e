"""The report's own exceptions: a report that cannot be written, and an automatic report that steps aside."""
from __future__ import annotations


class ReportSkipped(Exception):
    """The automatic report does not apply (an engine was stopped); the job ends cancelled."""


class ReportError(ValueError):
    """A report that cannot be requested or written; the message says why and what to do."""
