"""Reporting: checks on what a report says (claims against its sources and statistics)."""
