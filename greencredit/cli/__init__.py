"""The ``greencredit`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="greencredit",
    help="Real-time risk engine for low-carbon consumer credit.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Console-script entry point."""
    app()


def _register() -> None:
    # Imported here so `greencredit --help` lists every group from one place.
    from . import (
        ahp,
        audit,
        console,
        demo,
        events,
        face,
        portfolio,
        scoring,
        stack,
        users,
        worker,
    )

    app.add_typer(stack.stack_app, name="stack")
    app.add_typer(stack.topics_app, name="topics")
    app.command("validate")(events.validate_command)
    app.command("publish")(events.publish_command)
    app.command("produce", hidden=True)(events.publish_command)  # the old name still works
    app.command("tail")(events.tail_command)
    app.command("score")(scoring.score_command)
    app.add_typer(scoring.train_app, name="train")
    app.command("worker")(worker.worker_command)
    app.command("health")(worker.health_command)
    app.add_typer(audit.audit_app, name="audit")
    app.command("ahp")(ahp.ahp_command)
    app.command("demo")(demo.demo_command)
    app.command("portfolio")(portfolio.portfolio_command)
    app.add_typer(face.face_app, name="face")
    app.command("console")(console.console_command)
    app.add_typer(users.users_app, name="users")
    from . import bench

    app.command("bench")(bench.bench_command)


_register()
