"""The `tessera` command line (Typer + Rich)."""
