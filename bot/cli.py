"""`citebot bot`: registered with the citebot command through an entry point."""

from __future__ import annotations

import click


@click.command("bot")
@click.option("--sync", is_flag=True, help="Sync slash commands now, even if unchanged.")
@click.pass_context
def bot_command(ctx: click.Context, sync: bool) -> None:
    """Run the Discord bot (token from $DISCORD_TOKEN or $DISCORD_TOKEN_FILE)."""
    raise click.ClickException("the Discord bot is not built yet")
