"""`python -m core run --max-tokens/--max-cost`: the caps reach the run, a bad cap is a usage error, and
a run that reaches its cap exits 3 (completed_degraded) saying after how many paragraphs."""
from __future__ import annotations

import json

import pytest

from tests.fakes.openai_server import FakeOpenAI
from tests.research.test_engine import llm_responder
from tests.test_cli_run import TOPIC, assert_clean, cli, cli_parallel

pytestmark = pytest.mark.timeout(300)


def test_run_with_caps_from_the_command_line(isolated_env):
    rc, out, err = cli("data", "demo", "--posts", "600")
    assert rc == 0, err
    (rc_neg, _, err_neg), (rc_cost, out_cost, err_cost) = cli_parallel(
        ["run", TOPIC, "--offline", "--max-tokens", "-5"],
        ["run", TOPIC, "--offline", "--paragraphs", "1", "--reflections", "0", "--max-cost", "0.5", "--json"])
    assert rc_neg == 2 and "cannot be negative" in err_neg and "Traceback" not in err_neg
    assert rc_cost == 0, out_cost + err_cost  # offline: nothing is spent, the cap is never reached
    with FakeOpenAI(responder=llm_responder, latency=0.05) as fake:
        rc, out, err = cli("run", TOPIC, "--engines", "insight", "--paragraphs", "3", "--reflections", "1",
                           "--max-tokens", "3000", "--json", env=fake.env("INSIGHT_ENGINE"))
    assert rc == 3, out + err
    summary = json.loads(out)
    assert summary["status"] == "completed_degraded"
    [reason] = [d for d in summary["degraded"] if d["reason"] == "budget_reached"]
    assert reason["planned"] == 3 and reason["written"] < 3
    assert f"after {reason['written']} of 3 paragraphs" in summary["message"]
    assert summary["report"]  # the report was written all the same (offline, after the cap)
    assert_clean(err)
