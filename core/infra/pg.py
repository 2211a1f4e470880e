"""What PostgreSQL needs that the other backends do not (core.infra.db uses it on each connection).

PostgreSQL's text columns cannot hold a NUL character: psycopg refuses the whole statement
("PostgreSQL text fields cannot contain NUL (0x00) bytes"), while MySQL and SQLite store it. Text
from a scraped page, an imported file or a model's answer may carry one, and one such character
must not fail an import or a checkpoint. So on PostgreSQL every str parameter is sent without its
NULs (they carry nothing a reader needs). JSON values are cleaned by db's JSON serializer.
"""
from __future__ import annotations

from psycopg.types.string import StrBinaryDumper, StrDumperUnknown

__all__ = ["register_nul_free_strings"]


def _without_nul(obj: str) -> str:
    return obj.replace("\x00", "") if "\x00" in obj else obj


class NulFreeStrDumper(StrDumperUnknown):
    """psycopg's text-format dumper for str (the one it picks for a str parameter), minus NULs."""

    def dump(self, obj: str):
        return super().dump(_without_nul(obj))


class NulFreeStrBinaryDumper(StrBinaryDumper):
    def dump(self, obj: str):
        return super().dump(_without_nul(obj))


def register_nul_free_strings(dbapi_conn) -> None:
    """Make a new psycopg connection send every str without NUL characters."""
    adapters = dbapi_conn.adapters
    # The last one registered also serves PyFormat.AUTO: text, as psycopg's own default for str.
    adapters.register_dumper(str, NulFreeStrBinaryDumper)
    adapters.register_dumper(str, NulFreeStrDumper)
