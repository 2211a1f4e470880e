"""The README's local-model recipe, as written: its `.env` block loads without an error, configures
every LLM role on one endpoint capped at one call at a time, and works against a local-style server."""
from __future__ import annotations

import re
import threading
from pathlib import Path

from core.infra.config import LLM_ROLES, PROJECT_ROOT, load_settings
from core.llm.breaker import breakers
from core.llm.budgets import node_budget
from core.llm.client import LlmClient
from core.llm.limits import ProviderLimiter, endpoint_plan, provider_key
from tests.fakes.openai_server import FakeOpenAI

RECIPE_URL = "http://localhost:11434/v1"


def recipe() -> dict[str, str]:
    text = Path(PROJECT_ROOT, "README.md").read_text(encoding="utf-8")
    section = text.split("### Local models (Ollama, llama.cpp, vLLM)", 1)[1]
    block = re.search(r"```dotenv\n(.*?)```", section, re.S)
    assert block, "the README's local-model section has no dotenv block"
    env = {}
    for line in block.group(1).splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


def test_the_recipe_loads_cleanly_and_puts_every_role_on_one_endpoint_one_call_at_a_time():
    env = recipe()
    settings = load_settings(env=env)
    assert not settings.errors, settings.errors
    assert all(settings.llm_configured(role) for role in LLM_ROLES)
    plan = endpoint_plan(settings)
    assert list(plan) == [provider_key(RECIPE_URL)]
    roles, limit, _ = plan[provider_key(RECIPE_URL)]
    assert set(roles) == set(LLM_ROLES) and limit == 1
    assert node_budget("FirstSummaryNode", settings).deadline_s == 600


def test_the_recipe_runs_against_a_local_style_server():
    breakers.reset()
    answer = {"search_query": "新能源汽车 降价", "reasoning": "r"}
    # A local-style server that would take calls at once were it not for Shoal's own queue (local=False
    # keeps the server parallel, so one call at a time is the recipe's doing).
    with FakeOpenAI(default=answer, latency=0.05) as fake:
        env = {k: (v.replace(RECIPE_URL, fake.url) if v == RECIPE_URL else v) for k, v in recipe().items()}
        env = {**env, **{f"{role}_MODEL_NAME": fake.model for role in LLM_ROLES}}
        settings = load_settings(env=env)
        limiter = ProviderLimiter(18)
        clients = [LlmClient(role, settings, limiter=limiter) for role in LLM_ROLES]
        got: list = []
        threads = [threading.Thread(target=lambda c=c: got.append(
            c.complete_json("s", "u", required_keys=("search_query",), node="FirstSearchNode")))
            for c in clients]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert got == [answer] * len(LLM_ROLES)
    assert len(fake.requests) == len(LLM_ROLES) and fake.max_concurrency() == 1
    assert all(r.get("max_tokens") == node_budget("FirstSearchNode").max_tokens for r in fake.requests)

