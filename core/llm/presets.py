"""Presets for common OpenAI-compatible providers: a base URL and a model name per LLM role.

A preset fills `<ROLE>_BASE_URL` and `<ROLE>_MODEL_NAME` on the Settings page, never the key: a key
belongs to the host it was entered for (core.infra.config.keys_follow_urls clears a saved key when
the base URL changes). Model names are each provider's general-purpose chat models as documented
at the time of writing; "Test connection" lists what an endpoint really offers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Preset:
    id: str
    name: str  # a product name, shown as it is in both languages
    base_url: str
    model: str  # for every role without its own entry in `models`
    models: Mapping[str, str] = field(default_factory=dict)  # role → model
    local: bool = False  # a server on this machine, which usually needs no key

    def model_for(self, role: str) -> str:
        return self.models.get(role, self.model)

    def values(self, role: str) -> dict[str, str]:
        """The settings this preset sets for a role (never its key)."""
        return {f"{role}_BASE_URL": self.base_url, f"{role}_MODEL_NAME": self.model_for(role)}


PRESETS: tuple[Preset, ...] = (
    Preset("deepseek", "DeepSeek", "https://api.deepseek.com/v1", "deepseek-chat"),
    Preset("qwen", "Qwen (DashScope)", "https://dashscope.aliyuncs.com/compatible-mode/v1", "qwen-plus",
           {"REPORT_ENGINE": "qwen-max", "KEYWORD_OPTIMIZER": "qwen-turbo"}),
    Preset("kimi", "Kimi (Moonshot)", "https://api.moonshot.cn/v1", "kimi-k2-0905-preview",
           {"KEYWORD_OPTIMIZER": "moonshot-v1-8k"}),
    Preset("glm", "GLM (Zhipu)", "https://open.bigmodel.cn/api/paas/v4", "glm-4-plus",
           {"KEYWORD_OPTIMIZER": "glm-4-flash"}),
    Preset("openai", "OpenAI", "https://api.openai.com/v1", "gpt-4o", {"KEYWORD_OPTIMIZER": "gpt-4o-mini"}),
    Preset("ollama", "Ollama", "http://localhost:11434/v1", "qwen2.5:7b", local=True),
    Preset("llamacpp", "llama.cpp server", "http://localhost:8080/v1", "local-model", local=True),
)

BY_ID: dict[str, Preset] = {p.id: p for p in PRESETS}


def preset_values(preset_id: str, role: str) -> dict[str, str]:
    """`{"<ROLE>_BASE_URL": …, "<ROLE>_MODEL_NAME": …}` for a preset; KeyError for an unknown one."""
    return BY_ID[preset_id].values(role)


def matching_preset(base_url: str) -> Preset | None:
    """The preset whose base URL this is (trailing slashes aside), if any."""
    url = (base_url or "").strip().rstrip("/")
    return next((p for p in PRESETS if p.base_url.rstrip("/") == url), None)
