"""Reading and validating the ``VOXCALLBACKS_*`` configuration keys."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .auth import Credentials, id_text

#: Longest salt Voximplant's control panel and SetAccountInfo accept.
MAX_SALT_LENGTH = 40


class ConfigurationError(ValueError):
    """A ``VOXCALLBACKS_*`` key is missing or malformed; the message names the key."""


@dataclass(frozen=True)
class ConfigKey:
    """One documented configuration key."""

    name: str
    default: Any
    doc: str

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


_REQUIRED: Any = object()

#: Every configuration key, with its default; the docs' configuration table is built from this.
CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("VOXCALLBACKS_ACCOUNT_ID", _REQUIRED, "Id of the main Voximplant account (number)."),
    ConfigKey("VOXCALLBACKS_API_KEY", _REQUIRED, "API key of the main account."),
    ConfigKey(
        "VOXCALLBACKS_SALT",
        _REQUIRED,
        'Security salt set on the Webhooks page; ``""`` when the account has none.',
    ),
    ConfigKey("VOXCALLBACKS_PATH", "/voximplant/callbacks", "URL path of the callback endpoint."),
    ConfigKey(
        "VOXCALLBACKS_ACCOUNTS",
        {},
        'Further accounts (e.g. child accounts): ``{account_id: {"api_key": ..., "salt": ...}}``.',
    ),
    ConfigKey(
        "VOXCALLBACKS_MAX_CONTENT_LENGTH",
        1024 * 1024,
        "Largest accepted request body in bytes; larger bodies get 413.",
    ),
    ConfigKey(
        "VOXCALLBACKS_MAX_ITEMS",
        1000,
        "Most items one batch may carry; a larger batch gets 413 before any item is authenticated.",
    ),
    ConfigKey(
        "VOXCALLBACKS_STORE",
        "memory://",
        "Where claims and failed callbacks are kept: ``memory://``, "
        "``sqlite:///path/to/file.db``, ``redis://host:port/db``, "
        "``postgresql://user@host:port/dbname`` or ``sqlalchemy``.",
    ),
    ConfigKey(
        "VOXCALLBACKS_DEDUP_TTL",
        7 * 24 * 3600,
        "Seconds a handled callback id is remembered to drop redeliveries and replays.",
    ),
    ConfigKey(
        "VOXCALLBACKS_FAILURE_RETENTION",
        30 * 24 * 3600,
        "Seconds a failed callback (with its item and personal data) is kept for a replay.",
    ),
    ConfigKey(
        "VOXCALLBACKS_LEASE_SECONDS",
        300,
        "Seconds a claim lasts before another worker may take over a callback whose worker died.",
    ),
    ConfigKey(
        "VOXCALLBACKS_QUEUE",
        "",
        'Run the handlers on workers: ``"celery"`` (the Celery app in '
        '``app.extensions["celery"]``) or ``rq://host:port/db?queue=name``; '
        '``""`` runs them in the request.',
    ),
    ConfigKey(
        "VOXCALLBACKS_NAMESPACE",
        "",
        "Keeps this application's callbacks apart from other applications sharing its Redis"
        " server, SQLite file or RQ queue: lower-case letters, digits and ``_`` (at most 32).",
    ),
    ConfigKey(
        "VOXCALLBACKS_QUEUE_RETRIES",
        3,
        "Times a job whose handlers failed is retried by its queue (after 10 s, 40 s, 160 s, ...).",
    ),
    ConfigKey(
        "VOXCALLBACKS_METRICS",
        "",
        '``"prometheus"`` counts callbacks, rejections, handler durations and kept callbacks with'
        ' ``prometheus_client`` (the ``[prometheus]`` extra); ``""``: no metrics.',
    ),
    ConfigKey(
        "VOXCALLBACKS_TRACING",
        "",
        '``"opentelemetry"``: a span around each callback\'s receivers, linked across the queue'
        ' (the ``[opentelemetry]`` extra); ``""``: no spans.',
    ),
    ConfigKey(
        "VOXCALLBACKS_METRICS_REGISTRY",
        None,
        "The ``prometheus_client`` registry the metrics are registered on; None: its default"
        " registry.",
    ),
)
DEFAULTS = {key.name: key.default for key in CONFIG_KEYS}


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one application."""

    account_id: int
    path: str
    accounts: Mapping[int, Credentials]
    max_content_length: int
    max_items: int
    store_url: str
    dedup_ttl: int
    failure_retention: int
    lease_seconds: int
    queue_url: str = ""
    queue_retries: int = 3
    namespace: str = ""
    metrics: str = ""
    tracing: str = ""
    #: A prometheus_client CollectorRegistry, or None for its default one.
    metrics_registry: Any = None

    def __repr__(self) -> str:
        return (
            f"Settings(account_id={self.account_id}, path={self.path!r}, "
            f"accounts={sorted(self.accounts)}, store_url={redact_url(self.store_url)!r},"
            f" queue_url={redact_url(self.queue_url)!r}, namespace={self.namespace!r})"
        )


def redact_url(url: str) -> str:
    """A store URL fit to show: the user info (``redis://user:secret@host``) and any
    ``password=`` query parameter replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    rest, has_query, query = rest.partition("?")
    if "@" in rest and scheme != "sqlite":
        # The last "@" ends the user info, even when an unencoded password holds "/" or "@".
        rest = f"***@{rest.rsplit('@', 1)[1]}"
    query = "&".join(
        f"{name}=***" if "password" in name.lower() else f"{name}{eq}{value}"
        for name, eq, value in (pair.partition("=") for pair in query.split("&"))
    )
    return f"{scheme}{sep}{rest}{has_query}{query}"


def _get(config: Mapping[str, Any], name: str) -> Any:
    value = config.get(name, DEFAULTS[name])
    if value is _REQUIRED:
        raise ConfigurationError(f"{name} is required; set it in app.config before init_app().")
    return value


def _account_id(value: Any, name: str) -> int:
    text = id_text(value)
    if text is None:
        raise ConfigurationError(f"{name} must be a Voximplant account id (a positive number).")
    return int(text)


def _secret(value: Any, name: str, allow_empty: bool) -> str:
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string, not {type(value).__name__}.")
    if not value and not allow_empty:
        raise ConfigurationError(f"{name} must not be empty.")
    return value


def _salt(value: Any, name: str) -> str:
    salt = _secret(value, name, allow_empty=True)
    if len(salt) > MAX_SALT_LENGTH:
        raise ConfigurationError(
            f"{name} is {len(salt)} characters long; Voximplant accepts at most {MAX_SALT_LENGTH}."
        )
    return salt


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive whole number.")
    return int(value)


def _extra_accounts(value: Any, name: str) -> dict[int, Credentials]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f'{name} must map account ids to {{"api_key": ..., "salt": ...}} dictionaries.'
        )
    accounts: dict[int, Credentials] = {}
    for raw_id, entry in value.items():
        account_id = _account_id(raw_id, f"{name} key {raw_id!r}")
        where = f"{name}[{account_id}]"
        if not isinstance(entry, Mapping) or "api_key" not in entry or "salt" not in entry:
            raise ConfigurationError(f'{where} must be a dictionary with "api_key" and "salt".')
        accounts[account_id] = Credentials(
            _secret(entry["api_key"], f'{where}["api_key"]', allow_empty=False),
            _salt(entry["salt"], f'{where}["salt"]'),
        )
    return accounts


def _path(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value.startswith("/") or len(value) < 2:
        raise ConfigurationError(f"{name} must be a URL path such as '/voximplant/callbacks'.")
    return value


def _store_url(value: Any, name: str) -> str:
    if not isinstance(value, str) or not ("://" in value or value == "sqlalchemy"):
        raise ConfigurationError(
            f"{name} must be a URL: memory://, sqlite:///path/to/file.db, redis://host:port/db"
            ' or postgresql://user@host:port/dbname; or "sqlalchemy" for the database of'
            " Flask-SQLAlchemy."
        )
    return value


def _queue_url(value: Any, name: str) -> str:
    if not isinstance(value, str) or not (value in ("", "celery") or value.startswith("rq://")):
        raise ConfigurationError(
            f'{name} must be "celery", an RQ URL such as rq://localhost:6379/0?queue=name,'
            ' or "" to run the handlers in the request.'
        )
    return value


def _metrics(value: Any, name: str) -> str:
    if value not in ("", "prometheus"):
        raise ConfigurationError(f'{name} must be "prometheus" or "" for no metrics.')
    return str(value)


def _tracing(value: Any, name: str) -> str:
    if value not in ("", "opentelemetry"):
        raise ConfigurationError(f'{name} must be "opentelemetry" or "" for no spans.')
    return str(value)


_NAMESPACE = re.compile(r"[a-z0-9_]{1,32}")


def _namespace(value: Any, name: str) -> str:
    if not isinstance(value, str) or not (value == "" or _NAMESPACE.fullmatch(value)):
        raise ConfigurationError(
            f"{name} must be lower-case letters, digits and _ (at most 32), such as 'billing';"
            ' or "" for none.'
        )
    return value


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"{name} must be a whole number, 0 or more.")
    return int(value)


PREFIX = "VOXCALLBACKS_"


def _squeezed(name: str) -> str:
    """A key's letters and digits, upper-cased: ``vox-callback_store`` is ``VOXCALLBACKSTORE``."""
    return "".join(char for char in name.upper() if char.isalnum())


_SQUEEZED = {_squeezed(name): name for name in DEFAULTS}


def _looks_like_ours(name: str) -> bool:
    """A key meant for this extension: ours in another spelling (``VOXCALLBACK_STORE``,
    ``VOX_CALLBACKS_STORE``, ``voxcallbacks_store``), or one edit away from one of ours."""
    squeezed = _squeezed(name)
    if squeezed.startswith("VOXCALLBACK"):
        return True
    return bool(difflib.get_close_matches(name.upper(), DEFAULTS, n=1, cutoff=0.9))


def _unknown_keys(config: Mapping[str, Any]) -> None:
    """Refuse keys that look like ``VOXCALLBACKS_*`` settings but are not: a misspelt key would
    otherwise leave its setting at the default (a per-process memory store for
    ``VOXCALLBACK_STORE``)."""
    for name in sorted(k for k in config if isinstance(k, str) and _looks_like_ours(k)):
        if name in DEFAULTS:
            continue
        same = _SQUEEZED.get(_squeezed(name))
        if same is not None:
            raise ConfigurationError(
                f"{name} is not a flask-voxcallbacks setting; write it {same}."
            )
        raise ConfigurationError(f"{name} is not a flask-voxcallbacks setting; {_hint(name)}")


def _hint(name: str) -> str:
    """The known key a misspelt one most likely means, as a question, or the list of keys."""
    # Compared without the common prefix, which would make every name look close.
    bare = _squeezed(name).removeprefix("VOXCALLBACKS").removeprefix("VOXCALLBACK")
    suffixes = {_squeezed(known[len(PREFIX) :]): known for known in DEFAULTS}
    close = [known for suffix, known in suffixes.items() if bare and suffix.startswith(bare)]
    close = close or difflib.get_close_matches(name.upper(), DEFAULTS, n=1, cutoff=0.85)
    close = close or [suffixes[m] for m in difflib.get_close_matches(bare, suffixes, n=1)]
    if close:
        return f"did you mean {close[0]}?"
    return f"the settings are {', '.join(DEFAULTS)}."


def load_settings(config: Mapping[str, Any]) -> Settings:
    """Validate ``app.config``; raise :class:`ConfigurationError` naming the first bad key."""
    _unknown_keys(config)

    def read(name: str, check: Callable[[Any, str], Any]) -> Any:
        return check(_get(config, name), name)

    account_id = read("VOXCALLBACKS_ACCOUNT_ID", _account_id)
    main = Credentials(
        read("VOXCALLBACKS_API_KEY", lambda v, n: _secret(v, n, allow_empty=False)),
        read("VOXCALLBACKS_SALT", _salt),
    )
    accounts = read("VOXCALLBACKS_ACCOUNTS", _extra_accounts)
    if account_id in accounts:
        raise ConfigurationError(
            f"VOXCALLBACKS_ACCOUNTS repeats the main account {account_id}; remove that entry."
        )
    accounts[account_id] = main
    settings = Settings(
        account_id=account_id,
        path=read("VOXCALLBACKS_PATH", _path),
        accounts=accounts,
        max_content_length=read("VOXCALLBACKS_MAX_CONTENT_LENGTH", _positive_int),
        max_items=read("VOXCALLBACKS_MAX_ITEMS", _positive_int),
        store_url=read("VOXCALLBACKS_STORE", _store_url),
        dedup_ttl=read("VOXCALLBACKS_DEDUP_TTL", _positive_int),
        failure_retention=read("VOXCALLBACKS_FAILURE_RETENTION", _positive_int),
        lease_seconds=read("VOXCALLBACKS_LEASE_SECONDS", _positive_int),
        queue_url=read("VOXCALLBACKS_QUEUE", _queue_url),
        queue_retries=read("VOXCALLBACKS_QUEUE_RETRIES", _count),
        namespace=read("VOXCALLBACKS_NAMESPACE", _namespace),
        metrics=read("VOXCALLBACKS_METRICS", _metrics),
        tracing=read("VOXCALLBACKS_TRACING", _tracing),
        metrics_registry=read("VOXCALLBACKS_METRICS_REGISTRY", lambda value, name: value),
    )
    if settings.dedup_ttl < settings.lease_seconds:
        # A done marker or pin that ended before a claim's lease would let a redelivery with
        # another body run beside the one still running.
        raise ConfigurationError(
            f"VOXCALLBACKS_DEDUP_TTL ({settings.dedup_ttl} s) is shorter than"
            f" VOXCALLBACKS_LEASE_SECONDS ({settings.lease_seconds} s); a callback id must be"
            " remembered at least as long as a claim lasts: raise the TTL or lower the lease."
        )
    return settings
