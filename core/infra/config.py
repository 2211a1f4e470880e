"""Settings: st.secrets > environment > .env > defaults, with BettaFish-compatible names.

The UI passes st.secrets in as a plain mapping, so this module never imports Streamlit.
Only keys declared in SPECS are read or written; the Settings page edits `.env` through
`write_env_file`, which is atomic and touches only whitelisted keys.
"""
from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from dotenv import dotenv_values

from core.i18n import Msg
from core.infra.clock import zone_error
from core.infra.redact import url_password

PROJECT_ROOT = Path(__file__).resolve().parents[2]

LLM_ROLES = ("QUERY_ENGINE", "MEDIA_ENGINE", "INSIGHT_ENGINE", "REPORT_ENGINE", "FORUM_HOST", "KEYWORD_OPTIMIZER")


class SettingError(ValueError):
    """A setting value that cannot be used; the message says which key and why.

    It carries a core.i18n.Msg (`.msg`) that the Settings page renders in the reader's language;
    str() is the English text, for the CLI, doctor and logs (the catalogue holds both)."""

    def __init__(self, msg: "Msg | str"):
        self.msg = msg if isinstance(msg, Msg) else Msg("config.err_text", {"text": msg})
        super().__init__(self.msg.render("en"))


def _err(key: str, /, **args: Any) -> SettingError:
    return SettingError(Msg(f"config.{key}", args))


@dataclass(frozen=True)
class SettingSpec:
    """One setting. Its label and help text live in the catalogues (core/i18n, table [config]):
    `config.<key>` and `config.<key>_help` (lower case), or for a role's LLM key `config.llm_<what>`
    and `config.llm_<what>_help`, with the role's name as {role}."""
    key: str
    default: Any
    kind: str  # str | int | float | bool | url | db_url | choice | size | duration | zone | node_map
    group: str
    secret: bool = False
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    role: str = ""  # the LLM role of a <ROLE>_* key
    table: str = "config"  # the catalogue table of its label and help (a feature's own table)

    @property
    def text_key(self) -> str:
        if self.table != "config":
            return f"{self.table}.{self.key.lower()}"
        if self.role:
            return "config.llm_" + self.key[len(self.role) + 1:].lower()
        return "config." + self.key.lower()

    def _args(self) -> dict[str, Any]:
        return {"role": Msg(f"config.role_{self.role.lower()}")} if self.role else {}

    @property
    def label_msg(self) -> Msg:
        return Msg(self.text_key, self._args())

    @property
    def help_msg(self) -> Msg:
        return Msg(self.text_key + "_help", self._args())

    @property
    def help(self) -> str:
        """The English help text (CLI, doctor)."""
        return self.help_msg.render("en")


def _llm_specs() -> list[SettingSpec]:
    specs = []
    for role in LLM_ROLES:
        specs += [
            SettingSpec(f"{role}_API_KEY", "", "str", "LLM", secret=True, role=role),
            SettingSpec(f"{role}_BASE_URL", "", "url", "LLM", role=role),
            SettingSpec(f"{role}_MODEL_NAME", "", "str", "LLM", role=role),
            SettingSpec(f"{role}_CONCURRENCY", 0, "int", "LLM", minimum=0, maximum=256, role=role),
        ]
    return specs


SPECS: dict[str, SettingSpec] = {s.key: s for s in [
    *_llm_specs(),
    SettingSpec("TAVILY_API_KEY", "", "str", "Search", secret=True),
    SettingSpec("TAVILY_BASE_URL", "https://api.tavily.com", "url", "Search"),
    SettingSpec("BOCHA_WEB_SEARCH_API_KEY", "", "str", "Search", secret=True),
    SettingSpec("BOCHA_BASE_URL", "https://api.bochaai.com", "url", "Search"),
    SettingSpec("SEARCH_TIMEOUT", 20.0, "float", "Search", minimum=1, maximum=300),
    SettingSpec("DATABASE_URL", "", "db_url", "Database", secret=True),
    SettingSpec("DB_POOL_SIZE", 5, "int", "Database", minimum=1, maximum=100),
    SettingSpec("DB_MAX_OVERFLOW", 10, "int", "Database", minimum=0, maximum=200),
    SettingSpec("DB_POOL_RECYCLE", 1800, "int", "Database", minimum=30, maximum=86400),
    SettingSpec("DB_POOL_TIMEOUT", 10, "int", "Database", minimum=1, maximum=300),
    SettingSpec("DB_CONNECT_TIMEOUT", 5, "int", "Database", minimum=1, maximum=120),
    SettingSpec("SHOAL_MODE", "auto", "choice", "Limits", choices=("auto", "offline", "llm")),
    SettingSpec("SHOAL_MAX_WORKERS", 8, "int", "Limits", minimum=1, maximum=64),
    SettingSpec("SHOAL_MAX_CONCURRENT_RUNS", 2, "int", "Limits", minimum=1, maximum=32),
    SettingSpec("SHOAL_LLM_CONCURRENCY", 18, "int", "Limits", minimum=1, maximum=256),
    SettingSpec("SHOAL_PARAGRAPHS", 5, "int", "Limits", minimum=1, maximum=12),
    SettingSpec("SHOAL_REFLECTIONS", 2, "int", "Limits", minimum=0, maximum=5),
    SettingSpec("SHOAL_MIN_SOURCES", 20, "int", "Limits", minimum=1, maximum=10_000),
    SettingSpec("SHOAL_RELEVANCE_FLOOR", 0.5, "float", "Limits", minimum=0.05, maximum=1.0),
    SettingSpec("FORUM_HOST_EVERY", 5, "int", "Limits", minimum=1, maximum=50),
    SettingSpec("LLM_TIMEOUT", 120.0, "float", "Limits", minimum=1, maximum=1800),
    SettingSpec("RETRY_MAX_SECONDS", 60.0, "float", "Limits", minimum=0, maximum=3600),
    SettingSpec("LLM_NODE_MAX_TOKENS", "", "node_map", "Limits"),
    SettingSpec("LLM_NODE_DEADLINES", "", "node_map", "Limits"),
    SettingSpec("LLM_BREAKER_FAILURES", 3, "int", "Limits", minimum=0, maximum=100),
    SettingSpec("SHOAL_RUN_MAX_TOKENS", 0, "int", "Limits", minimum=0, maximum=1_000_000_000),  # core.llm.run_budget
    SettingSpec("SHOAL_RUN_MAX_COST_USD", 0.0, "float", "Limits", minimum=0, maximum=100_000),
    SettingSpec("SHOAL_LEASE_SECONDS", 30.0, "float", "Supervisor", minimum=1, maximum=3600),
    SettingSpec("SHOAL_HEARTBEAT_SECONDS", 5.0, "float", "Supervisor", minimum=0.05, maximum=600),
    SettingSpec("SHOAL_STALL_SECONDS", 180.0, "float", "Supervisor", minimum=1, maximum=86400),
    SettingSpec("SHOAL_CANCEL_TIMEOUT", 10.0, "float", "Supervisor", minimum=0.1, maximum=600),
    SettingSpec("SHOAL_SHUTDOWN_TIMEOUT", 15.0, "float", "Supervisor", minimum=0.1, maximum=600),
    SettingSpec("SHOAL_MAX_ATTEMPTS", 3, "int", "Supervisor", minimum=1, maximum=20),
    SettingSpec("SHOAL_AUTO_RESUME", True, "bool", "Supervisor"),
    SettingSpec("SHOAL_EVENTS_PER_RUN", 5000, "int", "Supervisor", minimum=100, maximum=1_000_000),
    SettingSpec("SHOAL_LOG_LEVEL", "INFO", "choice", "Logging", choices=("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR")),
    SettingSpec("SHOAL_LOG_DIR", "logs", "str", "Logging"),
    SettingSpec("FORUM_BETTAFISH_LOG_DIR", "", "str", "Logging"),
    SettingSpec("SHOAL_LOG_ROTATION", "20 MB", "size", "Logging"),
    SettingSpec("SHOAL_LOG_RETENTION", "14 days", "duration", "Logging"),
    SettingSpec("SHOAL_DATA_DIR", "data", "str", "Storage"),
    SettingSpec("SHOAL_MIN_FREE_MB", 500, "int", "Storage", minimum=1, maximum=1_000_000),
    SettingSpec("SHOAL_PRICE_TABLE", "", "str", "Console"),
    SettingSpec("SHOAL_ALERT_RULES", "", "str", "Console"),
    SettingSpec("SHOAL_SAMPLE_SECONDS", 5.0, "float", "Console", minimum=0.5, maximum=3600),
    SettingSpec("SHOAL_ALERT_SECONDS", 15.0, "float", "Console", minimum=1, maximum=3600),
    SettingSpec("SHOAL_HEALTH_SECONDS", 30.0, "float", "Console", minimum=5, maximum=3600),
    SettingSpec("SHOAL_TELEMETRY_BUFFER", 200_000, "int", "Console", minimum=1000, maximum=5_000_000),
    SettingSpec("SHOAL_METRICS_PORT", 0, "int", "Console", minimum=0, maximum=65535),
    SettingSpec("SHOAL_OPINION_NEGATIVE_PCT", 60.0, "float", "Console", minimum=0, maximum=100),
    SettingSpec("SHOAL_LANGUAGE", "auto", "choice", "Display", choices=("auto", "zh", "en")),
    SettingSpec("SHOAL_REPORT_LANGUAGE", "auto", "choice", "Display", choices=("auto", "zh", "en")),
    SettingSpec("SHOAL_TIMEZONE", "local", "zone", "Display"),
    SettingSpec("SHOAL_PUBLIC_URL", "", "url", "Display", table="provenance"),
    SettingSpec("SHOAL_ADMIN_PASSWORD", "", "str", "Access", secret=True),
    SettingSpec("SHOAL_PUBLIC", False, "bool", "Access"),
    SettingSpec("SHOAL_RUNS_PER_SESSION_PER_HOUR", 20, "int", "Access", minimum=0, maximum=10_000),
    SettingSpec("SHOAL_ALLOW_SERVER_PATH_IMPORT", False, "bool", "Access"),
]}

# Each base URL and the key that is sent to it: a key entered for one host is never sent to another.
URL_KEYS: dict[str, str] = {
    **{f"{role}_BASE_URL": f"{role}_API_KEY" for role in LLM_ROLES},
    "TAVILY_BASE_URL": "TAVILY_API_KEY",
    "BOCHA_BASE_URL": "BOCHA_WEB_SEARCH_API_KEY",
}

# Keys the Settings page may write into .env: everything declared except where the process lives.
EDITABLE_KEYS = frozenset(SPECS) - {"SHOAL_LOG_DIR", "SHOAL_DATA_DIR"}

_SIZE_RE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB)\s*$", re.I)
# "Node=number" pairs, comma-separated, `*` for every node (LLM_NODE_MAX_TOKENS, LLM_NODE_DEADLINES; core.llm.budgets)
NODE_MAP_RE = re.compile(r"^\s*(?:(?:\*|[A-Za-z_][A-Za-z0-9_]*)\s*=\s*\d+(?:\.\d+)?\s*(?:,\s*|$))*$")
_DURATION_RE = re.compile(r"^\s*\d+\s*(second|minute|hour|day|week|month)s?\s*$", re.I)
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_value(spec: SettingSpec, raw: Any) -> Any:
    """Turn a raw value into the typed value, or raise SettingError saying what is wrong."""
    if raw is None:
        return spec.default
    key = spec.key
    if spec.kind in ("int", "float"):
        try:
            value = int(str(raw).strip()) if spec.kind == "int" else float(str(raw).strip())
        except ValueError:
            raise _err(f"err_{spec.kind}", key=key, got=_show(spec, raw)) from None
        if spec.minimum is not None and value < spec.minimum:
            raise _err("err_min", key=key, min=f"{spec.minimum:g}", got=value)
        if spec.maximum is not None and value > spec.maximum:
            raise _err("err_max", key=key, max=f"{spec.maximum:g}", got=value)
        return value
    text = str(raw).strip()
    if spec.kind == "bool":
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise _err("err_bool", key=key, got=repr(text))
    if spec.kind == "choice":
        for choice in spec.choices:
            if text.lower() == choice.lower():
                return choice
        raise _err("err_choice", key=key, choices=", ".join(spec.choices), got=repr(text))
    if spec.kind == "url" and text:
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _err("err_url", key=key, got=repr(text))
    if spec.kind == "db_url" and text:
        validate_database_url(text)
    if spec.kind == "size" and not _SIZE_RE.match(text):
        raise _err("err_size", key=key, got=repr(text))
    if spec.kind == "zone" and zone_error(text):
        raise _err("err_zone", key=key, got=repr(text))
    if spec.kind == "duration" and not _DURATION_RE.match(text):
        raise _err("err_duration", key=key, got=repr(text))
    if spec.kind == "node_map" and not NODE_MAP_RE.match(text):
        raise _err("err_node_map", key=key, got=repr(text))
    if "\n" in text or "\r" in text:
        raise _err("err_line", key=key)
    return text


def validate_database_url(url: str) -> None:
    """Check a DATABASE_URL without connecting; the message never repeats the password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise _err("err_db_url") from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "mysql", "mariadb", "postgresql"):
        raise _err("err_db_backend", backend=backend)
    if backend in ("mysql", "mariadb"):
        if parsed.get_driver_name() not in ("pymysql",):
            raise _err("err_db_driver")
        if not parsed.host or not parsed.database:
            raise _err("err_db_host")
    if backend == "postgresql":
        # A bare postgresql:// connects through psycopg too (core.infra.db.engine_url).
        if parsed.drivername not in ("postgresql", "postgresql+psycopg"):
            raise _err("err_db_pg_driver")
        if not parsed.database or not (parsed.host or parsed.query.get("host")):
            raise _err("err_db_pg_host")


_SOURCE_KEYS = {"secrets": "config.source_secrets", "environment": "config.source_environment",
                ".env": "config.source_env_file", "default": "config.source_default"}


def source_msg(source: str) -> Msg:
    """Where a value comes from (Settings.source), in words."""
    return Msg(_SOURCE_KEYS.get(source, "config.source_default"))


def _show(spec: SettingSpec, raw: Any) -> str:
    return "(hidden)" if spec.secret else repr(str(raw))


@dataclass
class Settings:
    """Typed, validated settings with the source of each value."""

    values: dict[str, Any]
    sources: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)  # English, for the CLI, doctor and logs
    error_msgs: dict[str, Msg] = field(default_factory=dict)  # the same for a page, in the reader's language
    env_file: Path | None = None
    invalid_raw: dict[str, str] = field(default_factory=dict, repr=False)

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def source(self, key: str) -> str:
        return self.sources.get(key, "default")

    @property
    def project_root(self) -> Path:
        return PROJECT_ROOT

    def path(self, key: str) -> Path:
        p = Path(self.values[key])
        return p if p.is_absolute() else PROJECT_ROOT / p

    @property
    def data_dir(self) -> Path:
        return self.path("SHOAL_DATA_DIR")

    @property
    def log_dir(self) -> Path:
        return self.path("SHOAL_LOG_DIR")

    @property
    def database_url(self) -> str:
        # A broken DATABASE_URL is not replaced by the SQLite default: writing to a local file while
        # the operator believes data goes to MySQL would lose it on the next reboot. The database
        # reports the error and the app opens degraded.
        if "DATABASE_URL" in self.invalid_raw:
            return self.invalid_raw["DATABASE_URL"]
        url = self.values.get("DATABASE_URL") or ""
        return url or f"sqlite:///{self.data_dir / 'shoal.db'}"

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction filter."""
        out = []
        for key, spec in SPECS.items():
            if spec.secret and self.values.get(key):
                out.append(str(self.values[key]))
        url = self.invalid_raw.get("DATABASE_URL") or self.values.get("DATABASE_URL") or ""
        pw = url_password(url)
        if pw:
            out.append(pw)
        return out

    def llm_role(self, role: str) -> dict[str, str]:
        return {
            "api_key": self.values.get(f"{role}_API_KEY", ""),
            "base_url": self.values.get(f"{role}_BASE_URL", ""),
            "model": self.values.get(f"{role}_MODEL_NAME", ""),
        }

    def llm_configured(self, role: str) -> bool:
        if self.values.get("SHOAL_MODE") == "offline":
            return False
        r = self.llm_role(role)
        # A local endpoint (Ollama, vLLM) may need no key; a model name and base URL suffice.
        return bool(r["model"] and (r["base_url"] or r["api_key"]))

    def masked(self, key: str) -> str:
        """What a page may show for a key: secrets never come back, only whether they are set."""
        spec = SPECS[key]
        value = self.values.get(key)
        if spec.secret:
            return f"set (from {self.source(key)})" if value else "not set"
        return str(value)


def default_env_file() -> Path:
    return Path(os.environ.get("SHOAL_ENV_FILE") or PROJECT_ROOT / ".env")


def load_settings(secrets: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None,
                  env_file: Path | None = None) -> Settings:
    """Resolve every declared key. Invalid values fall back to the default and are listed in .errors."""
    env = os.environ if env is None else env
    env_file = env_file or default_env_file()
    file_values: dict[str, str | None] = {}
    if env_file.is_file():
        try:
            # No ${VAR} expansion: a secret containing "${" must read back as written (BettaFish's
            # pydantic-settings does not expand either).
            file_values = dict(dotenv_values(env_file, interpolate=False))
        except (OSError, UnicodeDecodeError) as exc:
            file_values = {}
            errors_file = f".env could not be read: {exc.__class__.__name__}"
        else:
            errors_file = ""
    else:
        errors_file = ""
    secrets = _flatten_secrets(secrets or {})
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    errors: dict[str, str] = {}
    error_msgs: dict[str, Msg] = {}
    invalid_raw: dict[str, str] = {}
    for key, spec in SPECS.items():
        for source, mapping in (("secrets", secrets), ("environment", env), (".env", file_values)):
            if key in mapping and mapping[key] is not None:
                raw, src = mapping[key], source
                break
        else:
            raw, src = None, "default"
        try:
            values[key] = parse_value(spec, raw)
            sources[key] = src
        except SettingError as exc:
            errors[key] = f"{exc} (from {src})" + ("" if key == "DATABASE_URL" else "; using the default")
            error_msgs[key] = Msg("config.err_loaded_db" if key == "DATABASE_URL" else "config.err_loaded",
                                  {"error": exc.msg, "source": source_msg(src)})
            values[key] = spec.default
            sources[key] = "default"
            invalid_raw[key] = str(raw)
    if errors_file:
        errors["_env_file"] = errors_file
    return Settings(values=values, sources=sources, errors=errors, error_msgs=error_msgs, env_file=env_file,
                    invalid_raw=invalid_raw)


def _flatten_secrets(secrets: Mapping[str, Any]) -> dict[str, Any]:
    """st.secrets allows sections; accept both top-level keys and keys inside any section."""
    flat: dict[str, Any] = {}
    for k, v in secrets.items():
        if isinstance(v, Mapping):
            for k2, v2 in v.items():
                if k2 in SPECS and not isinstance(v2, Mapping):
                    flat.setdefault(k2, v2)
        elif k in SPECS:
            flat[k] = v
    return flat


def update_errors(updates: Mapping[str, Any]) -> dict[str, SettingError]:
    """The error of each key of a proposed edit (its `.msg` for the page); empty when all are usable."""
    errors: dict[str, SettingError] = {}
    for key, raw in updates.items():
        if key not in EDITABLE_KEYS:
            errors[key] = _err("err_not_editable", key=key)
            continue
        try:
            parse_value(SPECS[key], raw)
        except SettingError as exc:
            errors[key] = exc
    return errors


def validate_updates(updates: Mapping[str, Any]) -> dict[str, str]:
    """Errors per key for a proposed edit, in English; empty when every value is usable."""
    return {key: str(exc) for key, exc in update_errors(updates).items()}


@dataclass
class KeyRebinding:
    """What a settings edit must also do so that no key follows its base URL to a new host."""
    clear: list[str] = field(default_factory=list)  # keys to remove from .env
    notes: list[Msg] = field(default_factory=list)  # what was cleared, for the page
    errors: dict[str, Msg] = field(default_factory=dict)  # edits refused: the key lives where .env cannot clear it


def keys_follow_urls(settings: Settings, updates: Mapping[str, Any], clear: Iterable[str] = ()) -> KeyRebinding:
    """A base URL that changes takes its stored key with it unless the key is entered again in the
    same edit: the key is cleared from .env, or the edit is refused when the key comes from
    secrets or the environment (which .env cannot clear)."""
    out = KeyRebinding()
    clearing = set(clear)
    for url_key, api_key in URL_KEYS.items():
        if url_key not in updates:
            continue
        new_url = str(updates[url_key] or "").strip()
        if new_url == str(settings.get(url_key) or "").strip() or not settings.get(api_key):
            continue
        source = settings.source(api_key)
        if source in ("secrets", "environment"):  # a key typed into .env would not override it either
            out.errors[url_key] = Msg("config.err_key_elsewhere", {"url_key": url_key, "api_key": api_key,
                                                                   "source": source_msg(source)})
            continue
        if api_key in updates or api_key in clearing:
            continue
        out.clear.append(api_key)
        out.notes.append(Msg("config.key_cleared", {"url_key": url_key, "api_key": api_key}))
    return out


def _env_line(key: str, value: str) -> str:
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'{key}="{escaped}"'


def write_env_file(updates: Mapping[str, Any], path: Path | None = None, remove: Iterable[str] = ()) -> Path:
    """Set (or remove) whitelisted keys in .env atomically, keeping every other line as it was."""
    path = path or default_env_file()
    errors = validate_updates(updates)
    for key in remove:
        if key not in EDITABLE_KEYS:
            errors[key] = str(_err("err_not_editable", key=key))
    if errors:
        raise SettingError("; ".join(errors.values()))
    pending = {k: ("true" if v is True else "false" if v is False else str(v)) for k, v in updates.items()}
    removing = set(remove)
    lines: list[str] = []
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
    out = []
    written: set[str] = set()
    for line in lines:
        m = re.match(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", line)
        key = m.group(1) if m else None
        if key in removing or key in written:
            # A later duplicate of an updated key would win when .env is read: drop it.
            continue
        if key in pending:
            out.append(_env_line(key, pending.pop(key)))
            written.add(key)
        else:
            out.append(line)
    out += [_env_line(k, v) for k, v in pending.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".env.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write("\n".join(out) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


