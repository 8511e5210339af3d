"""The pytest plugin, as a host project meets it: installed, with no conftest code."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest

pytestmark = pytest.mark.subprocess

HOST_APP = """
from flask import Flask
from flask_voxcallbacks import VoxCallbacks, sms_received

def create_app():
    app = Flask(__name__)
    app.config.update(VOXCALLBACKS_ACCOUNT_ID=42, VOXCALLBACKS_API_KEY="k", VOXCALLBACKS_SALT="s")
    VoxCallbacks(app)
    return app

replies = []

@sms_received.connect
def on_sms(sender, callback, **extra):
    if callback.payload.sms_body == "STOP":
        replies.append(callback.payload.source_number)
"""

FIVE_LINE_TEST = """
def test_stop_unsubscribes(vox_client, vox_recorder):
    from hostapp import replies
    response = vox_client.post_callbacks({"type": "sms_inbound", "sms_body": "STOP"})
    assert response.status_code == 200 and vox_recorder[0].type == "sms_inbound"
    assert replies == ["447700900123"]
"""


def test_readme_shows_the_five_line_test() -> None:
    from servers import ROOT

    readme = (ROOT / "README.rst").read_text()
    indented = "\n".join(
        f"    {line}" if line else "" for line in FIVE_LINE_TEST.strip().splitlines()
    )
    assert indented.replace("hostapp", "yourapp") in readme


def test_host_app_tests_a_handler_in_five_lines(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(hostapp=HOST_APP, test_host=FIVE_LINE_TEST)
    pytester.makeini("[pytest]\nvox_app = hostapp:create_app\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_failing_handler_assertion_fails_the_host_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        hostapp=HOST_APP,
        test_host=FIVE_LINE_TEST.replace('"STOP"})', '"HELLO"})'),
    )
    pytester.makeini("[pytest]\nvox_app = hostapp:create_app\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)


def test_projects_app_fixture_wins(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(hostapp=HOST_APP)
    pytester.makeconftest(
        "import pytest\nfrom hostapp import create_app\n\n"
        "@pytest.fixture\ndef app():\n    app = create_app()\n    app.config['MARK'] = 1\n"
        "    return app\n"
    )
    pytester.makepyfile(
        test_fixture="def test_it(vox_app):\n    assert vox_app.config['MARK'] == 1\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_without_any_app_a_bare_one_is_used(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bare="""
def test_it(vox_client, vox_recorder):
    assert vox_client.post_callbacks("min_balance", "js_fail").status_code == 200
    assert [c.type for c in vox_recorder] == ["min_balance", "js_fail"]
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_bad_vox_app_option_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_it(vox_app):\n    pass\n")
    pytester.makeini("[pytest]\nvox_app = nocolon\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*expected 'module:attribute'*"])


@pytest.mark.parametrize("vox_store", ["memory", "app"])
def test_host_tests_pass_twice_with_a_persistent_store(
    pytester: pytest.Pytester, vox_store: str
) -> None:
    store = pytester.path / "instance" / "vox.db"
    pytester.makepyfile(
        hostapp=HOST_APP.replace(
            'VOXCALLBACKS_SALT="s")',
            f'VOXCALLBACKS_SALT="s", VOXCALLBACKS_STORE="sqlite:///{store}")',
        ),
        test_host=FIVE_LINE_TEST
        + """
def test_the_store_in_use(vox_app):
    from flask_voxcallbacks.state import get_state
    assert vox_app.testing
    assert type(get_state(vox_app).store).__name__ == "%s"
"""
        % ("MemoryStore" if vox_store == "memory" else "SQLiteStore"),
    )
    pytester.makeini(f"[pytest]\nvox_app = hostapp:create_app\nvox_store = {vox_store}\n")
    for _run in (1, 2):
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        result.assert_outcomes(passed=2)


def test_a_bad_vox_store_option_is_a_clear_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(hostapp=HOST_APP, test_x="def test_it(vox_app):\n    pass\n")
    pytester.makeini("[pytest]\nvox_app = hostapp:create_app\nvox_store = redis\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*vox_store = 'redis': expected 'memory' or 'app'*"])


ENV_APP = """
import os
from flask import Flask
from flask_voxcallbacks import VoxCallbacks, min_balance_reached

def create_app(test_config=None):
    app = Flask(__name__)
    app.config.update(VOXCALLBACKS_ACCOUNT_ID=42, VOXCALLBACKS_API_KEY="k", VOXCALLBACKS_SALT="s")
    for key in ("VOXCALLBACKS_STORE", "VOXCALLBACKS_QUEUE"):
        if key in os.environ:
            app.config[key] = os.environ[key]
    app.config.update(test_config or {})
    VoxCallbacks(app)
    return app

handled = []

@min_balance_reached.connect
def on_low(sender, callback, **extra):
    handled.append(callback.callback_id)
"""

ENV_TESTS = """
import pytest
from flask_voxcallbacks.state import get_state
from flask_voxcallbacks.testing import make_batch, make_callback_for
from hostapp import handled

def _post(app):
    item = make_callback_for(app, "min_balance")
    response = app.test_client().post("/voximplant/callbacks", json=make_batch(item))
    return response, item["callback_id"]

def test_own_client_runs_handlers_inline(app):
    response, callback_id = _post(app)
    assert response.status_code == 200 and response.json["accepted"] == 1
    assert handled[-1] == callback_id
    state = get_state(app)
    assert state.queue is None and type(state.store).__name__ == "MemoryStore"

def test_vox_client_runs_handlers_inline(vox_client, vox_recorder):
    assert vox_client.post_callbacks("min_balance").json["accepted"] == 1
    assert handled[-1] == vox_recorder[0].callback_id

@pytest.mark.vox_real_store
def test_opting_in_keeps_the_configured_store_and_queue(app):
    state = get_state(app)
    assert state.queue is not None and type(state.store).__name__ == "SQLiteStore"
"""


def test_tests_never_reach_the_store_and_queue_the_environment_names(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project's ``app`` fixture whose factory reads the store and the queue from the
    environment: whether its tests post through their own client or the kit's, the handlers run
    in the test on a private store; no job is sent and nothing is written to the store file."""
    store = pytester.path / "instance" / "vox.db"
    monkeypatch.setenv("VOXCALLBACKS_STORE", f"sqlite:///{store}")
    # Nothing listens on the discard port: a job sent there would fail the post.
    monkeypatch.setenv("VOXCALLBACKS_QUEUE", "rq://127.0.0.1:9/0")
    pytester.makepyfile(hostapp=ENV_APP, test_host=ENV_TESTS)
    pytester.makeconftest(
        "import pytest\nfrom hostapp import create_app\n\n"
        "@pytest.fixture\ndef app():\n    return create_app({'TESTING': True})\n"
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    # Only the test that opted in opened the file; nothing was stored in it.
    with closing(sqlite3.connect(store)) as db:
        assert db.execute("SELECT count(*) FROM voxcallbacks").fetchone() == (0,)


def test_vox_config_reaches_the_factory(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        hostapp=ENV_APP,
        test_host="""
import pytest

@pytest.fixture
def vox_config():
    return {"VOXCALLBACKS_SALT": "test-salt", "VOXCALLBACKS_PATH": "/hooks/vox"}

def test_it(vox_app, vox_client, vox_recorder):
    assert vox_app.config["VOXCALLBACKS_SALT"] == "test-salt"
    assert vox_client.post("/hooks/vox", json={"callbacks": []}).status_code == 200
    assert vox_client.post_callbacks("min_balance").status_code == 200
    assert len(vox_recorder) == 1
""",
    )
    pytester.makeini("[pytest]\nvox_app = hostapp:create_app\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_vox_config_for_a_factory_without_an_argument_is_a_clear_error(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        hostapp=HOST_APP,
        test_host="""
import pytest

@pytest.fixture
def vox_config():
    return {"VOXCALLBACKS_SALT": "test-salt"}

def test_it(vox_app):
    pass
""",
    )
    pytester.makeini("[pytest]\nvox_app = hostapp:create_app\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(
        ["*vox_config gives settings but hostapp:create_app takes no argument*"]
    )
