"""init_app validates the VOXCALLBACKS_* keys and refuses to run twice."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from helpers import BASE_CONFIG, ENDPOINT, make_app

from flask_voxcallbacks import ConfigurationError, VoxCallbacks
from flask_voxcallbacks.config import CONFIG_KEYS
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.testing import make_batch, make_callback, record_callbacks


def app_with(**config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update({k: v for k, v in {**BASE_CONFIG, **config}.items() if v is not ...})
    return app


@pytest.mark.parametrize(
    "key", ["VOXCALLBACKS_ACCOUNT_ID", "VOXCALLBACKS_API_KEY", "VOXCALLBACKS_SALT"]
)
def test_missing_required_key_is_named(key: str) -> None:
    with pytest.raises(ConfigurationError, match=key):
        VoxCallbacks(app_with(**{key: ...}))


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"VOXCALLBACKS_ACCOUNT_ID": "acme"}, "VOXCALLBACKS_ACCOUNT_ID"),
        ({"VOXCALLBACKS_ACCOUNT_ID": True}, "VOXCALLBACKS_ACCOUNT_ID"),
        ({"VOXCALLBACKS_API_KEY": ""}, "VOXCALLBACKS_API_KEY"),
        ({"VOXCALLBACKS_API_KEY": 42}, "VOXCALLBACKS_API_KEY"),
        ({"VOXCALLBACKS_SALT": None}, "VOXCALLBACKS_SALT"),
        ({"VOXCALLBACKS_SALT": "s" * 41}, "VOXCALLBACKS_SALT"),
        ({"VOXCALLBACKS_PATH": "callbacks"}, "VOXCALLBACKS_PATH"),
        ({"VOXCALLBACKS_MAX_CONTENT_LENGTH": 0}, "VOXCALLBACKS_MAX_CONTENT_LENGTH"),
        ({"VOXCALLBACKS_MAX_CONTENT_LENGTH": "1MB"}, "VOXCALLBACKS_MAX_CONTENT_LENGTH"),
        ({"VOXCALLBACKS_ACCOUNTS": [1, 2]}, "VOXCALLBACKS_ACCOUNTS"),
        ({"VOXCALLBACKS_ACCOUNTS": {"x": {}}}, "VOXCALLBACKS_ACCOUNTS"),
        ({"VOXCALLBACKS_ACCOUNTS": {5: {"api_key": "k"}}}, r"VOXCALLBACKS_ACCOUNTS\[5\]"),
        ({"VOXCALLBACKS_ACCOUNTS": {1234567: {"api_key": "k", "salt": ""}}}, "repeats"),
        ({"VOXCALLBACKS_STORE": "mysql://db"}, "VOXCALLBACKS_STORE"),
        ({"VOXCALLBACKS_STORE": "memory"}, "VOXCALLBACKS_STORE"),
        ({"VOXCALLBACKS_DEDUP_TTL": -1}, "VOXCALLBACKS_DEDUP_TTL"),
        ({"VOXCALLBACKS_LEASE_SECONDS": 1.5}, "VOXCALLBACKS_LEASE_SECONDS"),
    ],
)
def test_malformed_key_is_named(config: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError, match=key):
        VoxCallbacks(app_with(**config))


def test_errors_never_show_secret_values() -> None:
    secret = "s3cr3t-salt-value-that-is-much-too-long-for-voximplant"
    with pytest.raises(ConfigurationError) as info:
        VoxCallbacks(app_with(VOXCALLBACKS_SALT=secret))
    assert secret not in str(info.value)


def test_string_account_ids_are_accepted() -> None:
    app = make_app(
        VOXCALLBACKS_ACCOUNT_ID="1234567",
        VOXCALLBACKS_ACCOUNTS={"7654321": {"api_key": "child-key", "salt": "child-salt"}},
    )
    items = [
        make_callback("min_balance"),
        make_callback("js_fail", account_id=7654321, api_key="child-key", salt="child-salt"),
    ]
    with record_callbacks(app) as seen:
        response = app.test_client().post(ENDPOINT, json=make_batch(*items))
    assert response.status_code == 200 and response.get_json()["accepted"] == 2
    assert [c.account_id for c in seen] == [1234567, 7654321]


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"api_key": "", "salt": "s"}, 'VOXCALLBACKS_ACCOUNTS[7654321]["api_key"]'),
        ({"api_key": 5, "salt": "s"}, 'VOXCALLBACKS_ACCOUNTS[7654321]["api_key"]'),
        ({"api_key": "k", "salt": "s" * 41}, 'VOXCALLBACKS_ACCOUNTS[7654321]["salt"]'),
        ({"api_key": "k"}, "VOXCALLBACKS_ACCOUNTS[7654321]"),
    ],
)
def test_extra_account_credentials_are_checked(entry: dict, key: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_ACCOUNTS={7654321: entry})
    assert str(info.value).startswith(key)


def test_registering_twice_raises() -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="already set up"):
        VoxCallbacks().init_app(app)


def test_app_factory_pattern_keeps_no_app() -> None:
    vox = VoxCallbacks()
    first, second = app_with(), app_with(VOXCALLBACKS_PATH="/other")
    vox.init_app(first)
    vox.init_app(second)
    assert not any(isinstance(value, Flask) for value in vars(vox).values())
    assert get_state(first).settings.path == "/voximplant/callbacks"
    assert get_state(second).settings.path == "/other"
    assert "voxcallbacks" in first.blueprints and "voxcallbacks" in second.blueprints


def test_state_of_an_app_without_the_extension_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="init_app"):
        get_state(Flask(__name__))


def test_config_keys_are_unique_and_prefixed_and_their_defaults_apply() -> None:
    names = [key.name for key in CONFIG_KEYS]
    assert len(names) == len(set(names))
    assert all(name.startswith("VOXCALLBACKS_") for name in names)
    settings = get_state(make_app()).settings
    assert settings.path == "/voximplant/callbacks"
    assert settings.max_content_length == 1024 * 1024
    assert "example-salt-42" not in repr(settings)


def test_a_misspelt_key_is_refused_with_the_closest_one() -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_STOR="sqlite:////tmp/x.db")
    assert str(info.value) == (
        "VOXCALLBACKS_STOR is not a flask-voxcallbacks setting; did you mean VOXCALLBACKS_STORE?"
    )


def test_a_key_missing_the_prefix_s_and_cut_short_is_still_recognised() -> None:
    # Too far from every key as a whole; after the prefix (with or without its S), the start of
    # one of them.
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACK_DED=60)
    assert str(info.value) == (
        "VOXCALLBACK_DED is not a flask-voxcallbacks setting; did you mean"
        " VOXCALLBACKS_DEDUP_TTL?"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mongodb://localhost", "VOXCALLBACKS_STORE has an unknown scheme 'mongodb'"),
        ("sqlite://", "VOXCALLBACKS_STORE needs a file"),
        ("redis://:pw@localhost:abc/0", "is not a valid Redis URL: Port could not be cast"),
        ("not a url", "VOXCALLBACKS_STORE must be a URL"),
    ],
)
def test_every_bad_store_url_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_STORE=url)
    assert message in str(info.value)
    assert ":pw@" not in str(info.value)


def test_an_sqlite_file_that_cannot_be_created_is_a_configuration_error(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_STORE=f"sqlite:///{blocker}/vox.db")
    assert str(info.value).startswith(
        f"VOXCALLBACKS_STORE: cannot open the SQLite file {blocker}/vox.db ("
    )


def test_a_missing_redis_package_is_a_configuration_error(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "flask_voxcallbacks.store.redis", raising=False)
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_STORE="redis://:secret@localhost:6379/0")
    assert "pip install 'flask-voxcallbacks[redis]'" in str(info.value)
    assert "secret" not in str(info.value)


def test_a_relative_sqlite_path_is_in_the_instance_folder(tmp_path) -> None:
    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    app.config.update(BASE_CONFIG, VOXCALLBACKS_STORE="sqlite:///data/vox.db")
    VoxCallbacks(app)
    assert (tmp_path / "instance" / "data" / "vox.db").exists()


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("memory://", "memory://"),
        ("sqlite:///relative/vox.db", "sqlite:///relative/vox.db"),
        ("sqlite:////var/lib/a@b/vox.db", "sqlite:////var/lib/a@b/vox.db"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:pw@host:6379/0", "redis://***@host:6379/0"),
        ("redis://user:pw@host/0", "redis://***@host/0"),
        ("redis://user:p@ss/w@rd@host/0", "redis://***@host/0"),
        ("rediss://host/0?password=pw&db=1", "rediss://host/0?password=***&db=1"),
        ("redis://host/0?password=a=b", "redis://host/0?password=***"),
        ("redis://host/0?Redis_Password=x", "redis://host/0?Redis_Password=***"),
        ("unix:///run/redis.sock?password=pw", "unix:///run/redis.sock?password=***"),
        ("redis://:pw@host/0?next=http://x", "redis://***@host/0?next=http://x"),
    ],
)
def test_store_urls_are_shown_without_passwords(url: str, shown: str) -> None:
    from flask_voxcallbacks.config import redact_url

    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"VOXCALLBACKS_API_KEY": 5}, "VOXCALLBACKS_API_KEY must be a string, not int."),
        (
            {"VOXCALLBACKS_ACCOUNTS": {7654321: ["api_key", "salt"]}},
            'VOXCALLBACKS_ACCOUNTS[7654321] must be a dictionary with "api_key" and "salt".',
        ),
        ({"VOXCALLBACKS_STORE": 5}, "VOXCALLBACKS_STORE must be a URL"),
        ({"VOXCALLBACKS_PATH": "/"}, "VOXCALLBACKS_PATH must be a URL path"),
    ],
)
def test_malformed_values_are_named_precisely(config: dict, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(**config)
    assert str(info.value).startswith(message)


def test_boundary_values_are_accepted() -> None:
    app = make_app(VOXCALLBACKS_SALT="s" * 40, VOXCALLBACKS_PATH="/v")
    item = make_callback("js_fail", salt="s" * 40)
    with record_callbacks(app) as seen:
        assert app.test_client().post("/v", json=make_batch(item)).status_code == 200
    assert len(seen) == 1


def test_the_endpoint_can_be_found_with_url_for() -> None:
    from flask import url_for

    app = make_app(VOXCALLBACKS_PATH="/hooks/vox")
    with app.test_request_context():
        assert url_for("voxcallbacks.receive") == "/hooks/vox"
        assert url_for("voxcallbacks.receive", _external=True) == "http://localhost/hooks/vox"


def test_an_unknown_key_with_no_close_match_lists_the_settings() -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_QQQQQQQQQQQQ=1)
    message = str(info.value)
    assert message.startswith("VOXCALLBACKS_QQQQQQQQQQQQ is not a flask-voxcallbacks setting; ")
    assert "the settings are VOXCALLBACKS_ACCOUNT_ID, VOXCALLBACKS_API_KEY, " in message


def test_store_errors_say_exactly_what_to_do(tmp_path, monkeypatch) -> None:
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_STORE=f"sqlite:///{blocker}/vox.db")
    assert str(info.value).endswith(
        "; make sure its directory can be created and written by this process"
    )
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_STORE="sqlite://vox.db")
    assert str(info.value).startswith("VOXCALLBACKS_STORE needs a file")
    monkeypatch.setitem(sys.modules, "redis", None)
    monkeypatch.delitem(sys.modules, "flask_voxcallbacks.store.redis", raising=False)
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_STORE="redis://localhost/0")
    assert str(info.value) == (
        "VOXCALLBACKS_STORE=redis://localhost/0 needs the redis package:"
        " pip install 'flask-voxcallbacks[redis]'"
    )


def test_without_an_instance_folder_a_relative_path_is_the_working_directorys(
    tmp_path, monkeypatch
) -> None:
    from flask_voxcallbacks.store import open_store

    monkeypatch.chdir(tmp_path)
    open_store("sqlite:///here.db").close()
    assert (tmp_path / "here.db").exists()


def test_metrics_and_tracing_are_off_unless_named() -> None:
    settings = get_state(make_app()).settings
    assert (settings.metrics, settings.tracing) == ("", "")
    from flask_voxcallbacks.config import load_settings

    named = load_settings({**BASE_CONFIG, "VOXCALLBACKS_METRICS": "prometheus"})
    assert named.metrics == "prometheus"


def test_a_store_setting_that_is_not_a_url_lists_the_forms_it_takes() -> None:
    with pytest.raises(ConfigurationError) as info:
        make_app(VOXCALLBACKS_STORE="localhost:6379")
    assert str(info.value) == (
        "VOXCALLBACKS_STORE must be a URL: memory://, sqlite:///path/to/file.db,"
        " redis://host:port/db or postgresql://user@host:port/dbname; or \"sqlalchemy\" for the"
        " database of Flask-SQLAlchemy."
    )
