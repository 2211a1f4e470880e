"""How long and how much each LLM node may take: a max_tokens sized to the node's output and a deadline.

Every call an engine, the forum host or the report makes names its node (`FirstSummaryNode`, ...).
The client (core/llm/client.py) looks the node up here when its caller gives no `max_tokens`, and
bounds the whole node call by its deadline: every JSON ask, every retry and its back-off (the time
spent waiting for a slot of the endpoint's own budget, core.llm.limits, is not counted: that is
Shoal's queue, not the model's time). Each attempt is cut at min(LLM_TIMEOUT, what is left).

Defaults (the table below) fit what each node is asked to write, with room for a reasoning model's
`<think>` preamble; two settings override them per node, or for every node with `*`:

    LLM_NODE_MAX_TOKENS="FirstSummaryNode=3000,ReportSectionNode=4000"
    LLM_NODE_DEADLINES="*=600"                 # seconds

An unknown node (a caller added later) gets DEFAULT_BUDGET.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from core.infra.config import NODE_MAP_RE

__all__ = ["NodeBudget", "NODE_BUDGETS", "DEFAULT_BUDGET", "NodeClock", "node_budget", "parse_node_map"]


@dataclass(frozen=True)
class NodeBudget:
    max_tokens: int  # sent as the request's max_tokens
    deadline_s: float  # the whole node call: asks, retries and back-offs


# node: (max_tokens, deadline in seconds). A summary asks for 300-900 characters of analysis (a
# Chinese character is about one token), inside a JSON string; a plan is one query and a reason.
NODE_BUDGETS: dict[str, NodeBudget] = {
    "ReportStructureNode": NodeBudget(1200, 240.0),
    "FirstSearchNode": NodeBudget(600, 180.0),
    "ReflectionNode": NodeBudget(600, 180.0),
    "FirstSummaryNode": NodeBudget(2000, 300.0),
    "ReflectionSummaryNode": NodeBudget(2400, 300.0),
    "ReportFormattingNode": NodeBudget(800, 180.0),
    "KeywordOptimizerNode": NodeBudget(300, 90.0),
    "ReportTypeNode": NodeBudget(400, 120.0),
    "ReportOutlineNode": NodeBudget(1000, 180.0),
    "ReportSectionNode": NodeBudget(2000, 360.0),
    "ForumHostNode": NodeBudget(1200, 240.0),
}
DEFAULT_BUDGET = NodeBudget(2000, 300.0)



def parse_node_map(text: str) -> dict[str, float]:
    """`"FirstSummaryNode=3000, *=600"` as {node: value}; raises ValueError on anything else."""
    text = (text or "").strip()
    if not text:
        return {}
    if not NODE_MAP_RE.match(text):
        raise ValueError(f"not a list of Node=number pairs: {text!r}")
    out: dict[str, float] = {}
    for part in text.split(","):
        if part.strip():
            name, value = part.split("=", 1)
            out[name.strip()] = float(value)
    return out


def _override(settings: Any, key: str, node: str) -> float | None:
    raw = settings.get(key, "") if settings is not None else ""
    try:
        table = parse_node_map(str(raw or ""))
    except ValueError:
        return None  # the settings report an invalid value; the defaults stay
    value = table.get(node, table.get("*"))
    return value if value is not None and value > 0 else None


def node_budget(node: str, settings: Mapping | Any = None) -> NodeBudget:
    """The node's bounds: the settings' override, else the table, else DEFAULT_BUDGET."""
    base = NODE_BUDGETS.get(node or "", DEFAULT_BUDGET)
    tokens = _override(settings, "LLM_NODE_MAX_TOKENS", node)
    deadline = _override(settings, "LLM_NODE_DEADLINES", node)
    return NodeBudget(int(tokens) if tokens is not None else base.max_tokens,
                      float(deadline) if deadline is not None else base.deadline_s)


class NodeClock:
    """The deadline of one node call. The time spent waiting for a slot of Shoal's own budget
    (`queued`) is not the model's and is not counted."""

    def __init__(self, node: str, seconds: float):
        import time

        self._now = time.monotonic
        self.node = node
        self.seconds = float(seconds)
        self.t0 = self._now()
        self.queued = 0.0

    def left(self) -> float:
        return self.seconds - (self._now() - self.t0 - self.queued)

    def attempt_limit(self, timeout: float) -> tuple[float, str]:
        """(seconds, setting) bounding the next attempt: LLM_TIMEOUT, or what is left of the deadline."""
        left = self.left()
        if left < timeout:
            return max(0.0, left), "LLM_NODE_DEADLINES"
        return timeout, "LLM_TIMEOUT"
