"""``flask voxcallbacks ...``: send samples, check the set-up, list types, replay failures."""

from __future__ import annotations

import difflib
import hmac
import json
import urllib.error
import urllib.request
from datetime import datetime, timezone
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .auth import (
    INVALID_ACCOUNT_ID,
    INVALID_CALLBACK_ID,
    MISSING_HASH,
    UNKNOWN_ACCOUNT,
    Rejection,
    authenticate,
    sign,
)
from .callbacks import Callback
from .config import Settings, redact_url
from .fields import wire_fields
from .handling import ACCEPTED, DUPLICATE, handle_kept, kept_callbacks
from .payloads import CALLBACK_TYPES, signal_names
from .readiness import check_readiness, store_errors
from .safe_text import printable
from .samples import make_batch, make_callback_for
from .state import get_state

voxcallbacks_cli = AppGroup(
    "voxcallbacks", help="Voximplant callbacks: samples, checks, types, failures and replays."
)
DEFAULT_HOST = "http://127.0.0.1:5000"


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


@voxcallbacks_cli.command("failed")
def failed_command() -> None:
    """List the callbacks whose handlers failed and that no later attempt handled, and in queue
    mode the callbacks still waiting for their job (a job lost with its worker stays listed)."""
    state = get_state(current_app)
    records, others = kept_callbacks(state)
    if others:
        click.echo(_others_note(others))
    if not records:
        click.echo("No failed or queued callbacks.")
        return
    now = state.store.now()
    lease = state.settings.lease_seconds
    for record in records:
        where = (
            f"{record.callback_id}  account={record.account_id}  type={printable(record.type)}  "
        )
        if record.queued:
            age = now - record.kept_at
            late = "  (older than the lease: its job may be lost)" if age > lease else ""
            click.echo(f"{where}queued  age={_age(age)}  since={_when(record.kept_at)}{late}")
            continue
        first_line = record.error.splitlines()[0] if record.error else ""
        click.echo(
            f"{where}attempts={record.attempts}  last={_when(record.kept_at)}  "
            f"error={printable(first_line, limit=200)}"
        )
        if record.succeeded:
            # These are not run again: a replay runs only the receivers that failed.
            names = ", ".join(printable(name, limit=200) for name in record.succeeded)
            click.echo(f"    succeeded: {names}")
    queued = sum(record.queued for record in records)
    click.echo(f"{len(records) - queued} failed callback(s), {queued} queued.")


@voxcallbacks_cli.command("replay")
@click.option(
    "--all",
    "replay_all",
    is_flag=True,
    help="Replay every failed callback, and every queued one older than the lease.",
)
@click.option(
    "--account",
    "account_id",
    type=int,
    help="Only the failed callbacks of this account (callback ids are per account).",
)
@click.argument("callback_ids", nargs=-1, type=int)
def replay_command(replay_all: bool, account_id: int | None, callback_ids: tuple[int, ...]) -> None:
    """Run failed callbacks through the handlers again (all, or the CALLBACK_IDS given, of every
    account unless --account is given), here and now. In queue mode, callbacks queued for longer
    than the lease (whose job was lost) are run too; a job that still comes finds them done."""
    if replay_all == bool(callback_ids):
        raise click.UsageError("Give either --all or one or more CALLBACK_IDs.")
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state(app)
    records, others = kept_callbacks(state)
    if others:
        click.echo(_others_note(others))
    if replay_all:
        # A younger queued callback most likely still has its job on the way.
        oldest = state.store.now() - state.settings.lease_seconds
        young = [r for r in records if r.queued and r.kept_at > oldest]
        if young:
            click.echo(
                f"Skipped {len(young)} queued callback(s) younger than the lease"
                f" (VOXCALLBACKS_LEASE_SECONDS={state.settings.lease_seconds}): their jobs are"
                " most likely on the way; name one to replay it now."
            )
        records = [r for r in records if not r.queued or r.kept_at <= oldest]
    if account_id is not None:
        records = [record for record in records if record.account_id == account_id]
    if callback_ids:
        wanted = set(callback_ids)
        missing = wanted - {record.callback_id for record in records}
        if missing:
            listed = ", ".join(str(i) for i in sorted(missing))
            raise click.ClickException(f"not among the failed or queued callbacks: {listed}")
        records = [record for record in records if record.callback_id in wanted]
    still_failing = 0
    for record in records:
        where = f"{record.callback_id}  account={record.account_id}  type={printable(record.type)}"
        try:
            outcome = handle_kept(app, state, record, replay=True)
        except Exception as error:
            # The store failed under this one (the others are still replayed).
            reason = printable(f"{type(error).__name__}: {error}", limit=300)
            click.echo(f"{where}  error ({reason})")
            still_failing += 1
            continue
        click.echo(f"{where}  {outcome}")
        still_failing += outcome not in (ACCEPTED, DUPLICATE)
    click.echo(f"{len(records) - still_failing} replayed, {still_failing} still failing.")
    if still_failing:
        raise SystemExit(1)


@voxcallbacks_cli.command("worker")
@click.option("--burst", is_flag=True, help="Run the queued jobs, then stop.")
def worker_command(burst: bool) -> None:
    """Run the jobs of the RQ queue (VOXCALLBACKS_QUEUE=rq://...) in this application: its
    configuration, store and signal receivers. Start one or more on any host."""
    queue = get_state(current_app).queue
    if queue is None or not queue.description.startswith("rq://"):
        raise click.ClickException(
            "VOXCALLBACKS_QUEUE is not an rq:// URL: this command runs RQ jobs. With Celery, start"
            " the application's Celery worker (celery -A ... worker)."
        )
    from .queue.rq import RQQueue

    assert isinstance(queue, RQQueue)
    # A store it cannot share or reach, or a broker that does not answer, stops it at once.
    problems = store_errors(current_app) or queue.errors(current_app)
    if problems:
        raise click.ClickException(problems[0])
    until = " until none is left" if burst else ""
    click.echo(f"Running the jobs of {queue.description}{until}")
    # Retries after a delay are scheduled jobs: the worker's scheduler enqueues them when due.
    queue.worker().work(burst=burst, with_scheduler=True, logging_level="INFO")


@voxcallbacks_cli.command("init-db")
def init_db_command() -> None:
    """Create the store's table in its PostgreSQL database (the other stores set themselves
    up); a table that exists is left as it is."""
    state = get_state(current_app)
    where = redact_url(state.settings.store_url)
    if state.store.transactional:
        where = "the database of Flask-SQLAlchemy"
    try:
        tables = state.store.create_tables()
    except Exception as error:
        reason = printable(f"{type(error).__name__}: {error}", limit=300)
        raise click.ClickException(f"cannot create the tables in {where}: {reason}") from None
    if tables:
        click.echo(f"Ready in {where}: {', '.join(tables)}.")
    else:
        click.echo(f"Nothing to create: {where} sets itself up.")


@voxcallbacks_cli.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    required=True,
    help="Remove failure records and queued callbacks older than this many days.",
)
def prune_command(days: float) -> None:
    """Remove failure records and queued callbacks older than DAYS days (and expired done
    markers)."""
    state = get_state(current_app)
    _, others = kept_callbacks(state)
    removed = state.store.prune(days * 86400, accounts=state.settings.accounts)
    click.echo(f"Removed {removed} failed callback(s) older than {days:g} day(s).")
    if others:
        click.echo(_others_note(others))


def _others_note(others: int) -> str:
    return (
        f"Warning: {others} failed or queued callback(s) of accounts this application is not"
        " configured for are left untouched (another application shares the store; give each"
        " its own VOXCALLBACKS_NAMESPACE)."
    )


def _field(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise click.BadParameter(f"{text!r} is not key=value", param_hint="--field")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


@voxcallbacks_cli.command("send")
@click.argument("type_name", metavar="TYPE")
@click.option(
    "--url",
    help=f"Where to post: a base URL (default {DEFAULT_HOST}) gets this app's endpoint path;"
    " a URL with a path is used as it is.",
)
@click.option("--count", type=click.IntRange(min=1, max=1000), default=1, show_default=True)
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a field; VALUE is read as JSON when it parses (1.5, true), else as text.",
)
def send_command(type_name: str, url: str | None, count: int, fields: tuple[str, ...]) -> None:
    """Post COUNT signed sample callbacks of TYPE to a running application."""
    if type_name not in CALLBACK_TYPES:
        close = difflib.get_close_matches(type_name, CALLBACK_TYPES, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else " See: flask voxcallbacks types"
        raise click.BadParameter(f"unknown type {type_name!r}.{hint}", param_hint="TYPE")
    settings = get_state(current_app).settings
    overrides = dict(_field(text) for text in fields)
    try:
        items = [make_callback_for(current_app, type_name, **overrides) for _ in range(count)]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--field") from None
    target = _endpoint(url or DEFAULT_HOST, settings.path)
    if not target.startswith(("http://", "https://")):
        raise click.BadParameter(f"{target!r} is not an http(s) URL", param_hint="--url")
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        target,
        data=json.dumps(make_batch(*items)).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - checked above
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except (urllib.error.URLError, OSError) as error:
        raise click.ClickException(f"could not reach {target}: {error}") from None
    text = printable(body.decode(errors="replace").strip(), limit=500)
    click.echo(f"{status} {text}")
    summary = _summary_of(body)
    # In queue mode the samples are queued: accepted for handling by the workers.
    taken = summary.get("accepted", 0) + summary.get("queued", 0)
    if status != 200 or taken != count:
        raise click.ClickException(
            f"{taken} of {count} sample(s) accepted; " + _what_went_wrong(status, summary)
        )


def _endpoint(url: str, path: str) -> str:
    """``url`` itself when it names a path, else the application's endpoint on that host."""
    scheme, sep, rest = url.partition("://")
    if sep and rest.partition("/")[2].strip("/") == "":
        return f"{scheme}{sep}{rest.split('/')[0]}{path}"
    return url


def _summary_of(body: bytes) -> dict[str, Any]:
    """The endpoint's JSON summary, or an empty one when the answer is something else."""
    try:
        summary = json.loads(body)
    except ValueError:
        return {}
    return summary if isinstance(summary, dict) else {}


def _what_went_wrong(status: int, summary: dict[str, Any]) -> str:
    if not summary:
        return f"the answer ({status}) is not the endpoint's summary: is --url the endpoint?"
    counts = ", ".join(
        f"{key}={summary[key]}"
        for key in ("rejected", "duplicates", "in_progress", "failed")
        if summary.get(key)
    )
    return f"the endpoint answered {status} with {counts or 'nothing accepted'}"


@voxcallbacks_cli.command("check")
@click.option("--strict", is_flag=True, help="Exit with status 2 when there are warnings.")
@click.option(
    "--ready", is_flag=True, help="Print one line, for a readiness probe: ready, or what is wrong."
)
def check_command(strict: bool, ready: bool) -> None:
    """Validate the configuration, the store and the queue; print the endpoint and the accounts.

    Exits with status 0 when every callback would be handled, 1 when none would (an ERROR line
    says why), and with --strict 2 when there are warnings only.
    """
    verdict = check_readiness(current_app)
    status = 1 if verdict.errors else 2 if strict and verdict.warnings else 0
    if ready:
        if verdict.errors:
            click.echo(f"not ready: {verdict.errors[0]}")
        elif status:
            click.echo(f"not ready (--strict): {verdict.warnings[0]}")
        else:
            count = len(verdict.warnings)
            click.echo(f"ready, with {count} warning(s)" if count else "ready")
        raise SystemExit(status)
    for fact in verdict.facts:
        click.echo(fact)
    for warning in verdict.warnings:
        click.echo(f"Warning: {warning}")
    for problem in verdict.errors:
        click.echo(f"Error: {problem}")
    if verdict.errors:
        # Every callback would fail: a probe or a deploy script must not read this as ready.
        click.echo(
            f"Error: {len(verdict.errors)} error(s): callbacks would not be handled", err=True
        )
    elif verdict.warnings:
        click.echo(f"OK, with {len(verdict.warnings)} warning(s)")
    else:
        click.echo("OK")
    raise SystemExit(status)


@voxcallbacks_cli.command("types")
def types_command() -> None:
    """List every known callback type with its signal and payload fields."""
    names = signal_names()
    for type_name, spec in sorted(CALLBACK_TYPES.items()):
        click.echo(f"{type_name}  signal={names[type_name]}  ({spec.status})")
        for field_name, field in spec.payload.wire_fields():
            click.echo(f"    {field_name}: {field.kind}")
    click.echo(f"{len(CALLBACK_TYPES)} types. Common fields on every callback:")
    click.echo("    " + ", ".join(name for name, _ in wire_fields(Callback)))


@voxcallbacks_cli.command("verify")
@click.argument("source", type=click.File("r"), default="-")
def verify_command(source: Any) -> None:
    """Check captured callbacks against this application's accounts: whether each hash matches
    and, if not, what was compared. SOURCE is a file (default: standard input) holding an item,
    a list of items or a whole batch, as JSON. The api key and the salt are never printed."""
    try:
        data = json.loads(source.read())
    except ValueError as error:
        raise click.ClickException(f"the input is not JSON: {error}") from None
    if isinstance(data, dict) and "callbacks" in data:
        data = data["callbacks"]
    items = data if isinstance(data, list) else [data]
    settings = get_state(current_app).settings
    wrong = 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            click.echo(f"item {index}: not a JSON object")
            wrong += 1
            continue
        where = (
            f"item {index} (callback {printable(item.get('callback_id'))},"
            f" account {printable(item.get('account_id'))})"
        )
        verdict = authenticate(item, settings.accounts)
        if isinstance(verdict, Rejection):
            wrong += 1
            click.echo(f"{where}: {_explain(item, verdict, settings)}")
        else:
            click.echo(f"{where}: the hash matches")
    click.echo(f"{len(items) - wrong} of {len(items)} item(s) authentic.")
    if wrong:
        raise SystemExit(1)


def _explain(item: dict[str, Any], rejection: Rejection, settings: Settings) -> str:
    """What a rejection means for this configuration, without any secret."""
    account = rejection.account_id
    if rejection.reason == INVALID_ACCOUNT_ID:
        return "account_id is missing or is not a positive number"
    if rejection.reason == INVALID_CALLBACK_ID:
        return "callback_id is missing or is not a positive number"
    if rejection.reason == UNKNOWN_ACCOUNT:
        return (
            f"account {account} is not configured: set it as VOXCALLBACKS_ACCOUNT_ID or add it"
            " to VOXCALLBACKS_ACCOUNTS"
        )
    if rejection.reason == MISSING_HASH:
        return "the item has no hash"
    assert account is not None and rejection.callback_id is not None
    credentials = settings.accounts[account]
    setting = (
        "VOXCALLBACKS_SALT and VOXCALLBACKS_API_KEY"
        if account == settings.account_id
        else f"VOXCALLBACKS_ACCOUNTS[{account}]"
    )
    text = (
        f"the hash does not match md5(salt + account_id + api_key + callback_id) computed with"
        f" the salt ({len(credentials.salt)} characters) and the api key"
        f" ({len(credentials.api_key)} characters) of {setting}"
    )
    received = str(item.get("hash", "")).lower()
    unsalted = sign("", account, credentials.api_key, rejection.callback_id)
    if credentials.salt and hmac.compare_digest(unsalted, received):
        return text + "; it matches without a salt: the account has none on Voximplant's side"
    return text + "; compare them with the account's Webhooks page and API keys"
