"""``flask voxcallbacks ...``: inspect, replay and prune failed callbacks."""

from __future__ import annotations

from datetime import datetime, timezone

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .callbacks import build_callback
from .handling import ACCEPTED, DUPLICATE, handle
from .state import VoxState, get_state
from .store import FailedCallback

voxcallbacks_cli = AppGroup("voxcallbacks", help="Voximplant callbacks: failures and replays.")


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


@voxcallbacks_cli.command("failed")
def failed_command() -> None:
    """List the callbacks whose handlers failed and that no later attempt handled."""
    records = get_state(current_app).store.failed()
    if not records:
        click.echo("No failed callbacks.")
        return
    for record in records:
        first_line = record.error.splitlines()[0] if record.error else ""
        click.echo(
            f"{record.callback_id}  account={record.account_id}  type={record.type}  "
            f"attempts={record.attempts}  last={_when(record.failed_at)}  error={first_line}"
        )
    click.echo(f"{len(records)} failed callback(s).")


@voxcallbacks_cli.command("replay")
@click.option("--all", "replay_all", is_flag=True, help="Replay every failed callback.")
@click.argument("callback_ids", nargs=-1, type=int)
def replay_command(replay_all: bool, callback_ids: tuple[int, ...]) -> None:
    """Run failed callbacks through the handlers again (all, or the CALLBACK_IDS given)."""
    if replay_all == bool(callback_ids):
        raise click.UsageError("Give either --all or one or more CALLBACK_IDs.")
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    state = get_state(app)
    records = state.store.failed()
    if callback_ids:
        wanted = set(callback_ids)
        missing = wanted - {record.callback_id for record in records}
        if missing:
            listed = ", ".join(str(i) for i in sorted(missing))
            raise click.ClickException(f"not among the failed callbacks: {listed}")
        records = [record for record in records if record.callback_id in wanted]
    outcomes = [(record, _replay(app, state, record)) for record in records]
    for record, outcome in outcomes:
        click.echo(f"{record.callback_id}  type={record.type}  {outcome}")
    still_failing = sum(outcome not in (ACCEPTED, DUPLICATE) for _, outcome in outcomes)
    click.echo(f"{len(outcomes) - still_failing} replayed, {still_failing} still failing.")
    if still_failing:
        raise SystemExit(1)


def _replay(app: Flask, state: VoxState, record: FailedCallback) -> str:
    callback = build_callback(record.item, record.callback_id, record.account_id, record.type)
    return handle(app, state, callback)


@voxcallbacks_cli.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    required=True,
    help="Remove failure records older than this many days.",
)
def prune_command(days: float) -> None:
    """Remove failure records older than DAYS days (and expired done markers)."""
    removed = get_state(current_app).store.prune(days * 86400)
    click.echo(f"Removed {removed} failed callback(s) older than {days:g} day(s).")
