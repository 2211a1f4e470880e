"""Forum metering: what a run's forum discussion cost, per speaker and per host round.

Every forum message carries the tokens, cost and latency of the LLM call that wrote it (core.forum's
readers join llm_calls; zero for the offline analyst and imports, cost None for an unpriced model).
Here they are summed:

  per speaker (source):  messages, input/output tokens, cost, LLM latency
  per round:             the same, plus the time from the round's start (its first agent message)
                         to the host's speech of that round (None until the host has spoken)

A cost total is the sum of the priced messages; `unpriced` counts the messages whose call has no
price, and a total is None only when every message with a call is unpriced (never a false $0).
Messages without a round (an import, a message posted outside the host's cadence) are counted per
speaker and under round None. `forum_metering(db, run_id)` reads the whole transcript in batches
(each message once, no content kept); `metering_of(messages)` does the sums for messages in hand;
a `MeteringTally` keeps the sums between a page's refreshes and reads only the new messages.
"""
from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Iterable, Iterator

from core.forum import ForumMessage, transcript
from core.infra.db import Database

BATCH = 1000  # messages per read


@dataclass(frozen=True)
class Meter:
    """Messages and what their calls cost: one speaker's or one round's."""
    messages: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0   # the priced messages' cost; None when every message with a call is unpriced
    unpriced: int = 0              # messages whose call's cost is unknown
    latency_ms: float = 0.0        # the calls' summed latency

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class SpeakerMeter:
    source: str        # QUERY | MEDIA | INSIGHT | HOST | SYSTEM (or any other source the forum has)
    sender: str
    meter: Meter


@dataclass(frozen=True)
class RoundMeter:
    round: int | None                 # None: messages without a round
    meter: Meter
    started_at: datetime | None       # the round's first agent message
    host_at: datetime | None          # the host's speech of the round, once it has spoken
    agent_messages: int = 0

    @property
    def seconds_to_host(self) -> float | None:
        """From the round's start to the host's speech (None until both exist)."""
        if self.started_at is None or self.host_at is None:
            return None
        return max(0.0, (self.host_at - self.started_at).total_seconds())


@dataclass(frozen=True)
class ForumMetering:
    run_id: str
    speakers: tuple[SpeakerMeter, ...]
    rounds: tuple[RoundMeter, ...]
    total: Meter

    def as_dict(self) -> dict:
        """For the JSON export: plain values, times in ISO format."""
        def meter(m: Meter) -> dict:
            return {**asdict(m), "tokens": m.tokens}

        return {"run_id": self.run_id, "total": meter(self.total),
                "speakers": [{"source": s.source, "sender": s.sender, **meter(s.meter)} for s in self.speakers],
                "rounds": [{"round": r.round, "agent_messages": r.agent_messages, **meter(r.meter),
                            "started_at": r.started_at.isoformat() if r.started_at else None,
                            "host_at": r.host_at.isoformat() if r.host_at else None,
                            "seconds_to_host": r.seconds_to_host} for r in self.rounds]}


class _Sum:
    def __init__(self):
        self.messages = self.tin = self.tout = self.unpriced = self.with_call = 0
        self.cost = 0.0
        self.latency = 0.0

    def add(self, m: ForumMessage) -> None:
        self.messages += 1
        self.tin += int(m.input_tokens or 0)
        self.tout += int(m.output_tokens or 0)
        self.latency += float(m.latency_ms or 0.0)
        if m.llm_call_id is not None:
            self.with_call += 1
        if m.cost_usd is None:
            self.unpriced += 1
        else:
            self.cost += float(m.cost_usd)

    def meter(self) -> Meter:
        priced_none = self.with_call > 0 and self.unpriced >= self.with_call
        return Meter(self.messages, self.tin, self.tout, None if priced_none else round(self.cost, 8),
                     self.unpriced, round(self.latency, 3))


class MeteringTally:
    """A run's forum metering kept up to date: the running sums and the id of the last message
    summed, so that a page polling a long run reads only the messages posted since (O(new), not the
    whole transcript every refresh). Every sum is additive, and a message's metering is final when it
    is posted (its llm_calls row is written before it), so advancing gives the same figures as
    summing the whole transcript again."""

    def __init__(self, run_id: str):
        self.run_id = run_id
        self.last_id = 0
        self._total = _Sum()
        self._speakers: dict[str, tuple[str, _Sum]] = {}
        self._rounds: dict[int | None, list] = {}   # round -> [sum, first agent ts, host ts, agent messages]

    def add(self, messages: Iterable[ForumMessage]) -> "MeteringTally":
        for m in messages:
            self._total.add(m)
            self._speakers.setdefault(m.source, (m.sender, _Sum()))[1].add(m)
            r = self._rounds.setdefault(m.round, [_Sum(), None, None, 0])
            r[0].add(m)
            if m.type == "agent":
                r[3] += 1
                if r[1] is None or m.timestamp < r[1]:
                    r[1] = m.timestamp
            elif m.type == "host" and m.round is not None and (r[2] is None or m.timestamp < r[2]):
                r[2] = m.timestamp
            self.last_id = max(self.last_id, m.id)
        return self

    def advance(self, db: Database, prices=None) -> ForumMetering:
        """Sum the messages posted since the last advance; the metering so far."""
        return self.add(all_messages(db, self.run_id, prices, after_id=self.last_id)).metering()

    def metering(self) -> ForumMetering:
        """Per speaker (in order of first message) and per round (in round order, None last)."""
        rounds = self._rounds
        order = sorted(rounds, key=lambda k: (k is None, k or 0))
        return ForumMetering(
            self.run_id,
            tuple(SpeakerMeter(src, sender, acc.meter()) for src, (sender, acc) in self._speakers.items()),
            tuple(RoundMeter(k, rounds[k][0].meter(), rounds[k][1], rounds[k][2], rounds[k][3]) for k in order),
            self._total.meter())


def metering_of(run_id: str, messages: Iterable[ForumMessage]) -> ForumMetering:
    """Per speaker (in order of first message) and per round (in round order, None last) sums."""
    return MeteringTally(run_id).add(messages).metering()


def all_messages(db: Database, run_id: str, prices=None, after_id: int = 0) -> Iterator[ForumMessage]:
    """A run's transcript after message ``after_id`` (all of it by default), metered, read in
    batches of BATCH (pages and exports of long runs)."""
    cursor = after_id
    while True:
        batch = transcript(db, run_id, after_id=cursor, limit=BATCH, prices=prices)
        yield from batch
        if len(batch) < BATCH:
            return
        cursor = batch[-1].id


def forum_metering(db: Database, run_id: str, prices=None) -> ForumMetering:
    """A run's whole transcript metered, priced with ``prices`` (None: genai-prices')."""
    return MeteringTally(run_id).advance(db, prices)


SPEAKER_COLUMNS = ("table", "key", "sender", "messages", "agent_messages", "input_tokens", "output_tokens", "tokens",
                   "cost_usd", "unpriced", "latency_ms", "started_at", "host_at", "seconds_to_host")


def metering_csv(metering: ForumMetering) -> str:
    """The two tables in one CSV: a row per speaker (table=speaker, key=source), then per round
    (table=round, key=round number, empty for messages without a round); cost empty when unknown."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(SPEAKER_COLUMNS)

    def nums(m: Meter) -> list:
        return [m.messages, m.input_tokens, m.output_tokens, m.tokens, "" if m.cost_usd is None else m.cost_usd,
                m.unpriced, m.latency_ms]

    for s in metering.speakers:
        w.writerow(["speaker", s.source, s.sender, s.meter.messages, "", *nums(s.meter)[1:], "", "", ""])
    for r in metering.rounds:
        secs = r.seconds_to_host
        w.writerow(["round", "" if r.round is None else r.round, "", r.meter.messages, r.agent_messages,
                    *nums(r.meter)[1:], r.started_at.isoformat() if r.started_at else "",
                    r.host_at.isoformat() if r.host_at else "", "" if secs is None else round(secs, 3)])
    return out.getvalue()
