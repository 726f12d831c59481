"""Render results as a Rich table, JSON or YAML; the format is the caller's choice."""

from __future__ import annotations

import json
from collections.abc import Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


Output = Annotated[OutputFormat, typer.Option("--output", "-o", help="table, json or yaml.")]


def emit(data: Any, fmt: OutputFormat, columns: Sequence[str] = ()) -> None:
    """Print `data` (a dict or a list of dicts); tables show `columns` (all when empty)."""
    if fmt is OutputFormat.JSON:
        console.print_json(json.dumps(data, default=str))
        return
    if fmt is OutputFormat.YAML:
        console.print(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), end="")
        return
    rows = data if isinstance(data, list) else [data]
    if not rows:
        console.print("(none)")
        return
    if not isinstance(data, list) and not columns:
        table = Table(show_header=False, box=None)
        for key, value in data.items():
            table.add_row(f"[bold]{key}[/]", _cell(value))
        console.print(table)
        return
    names = list(columns) or list(rows[0])
    table = Table(header_style="bold")
    for name in names:
        table.add_column(name, overflow="fold")  # ids must stay whole to be copied
    for row in rows:
        table.add_row(*(_cell(row.get(name)) for name in names))
    console.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)
