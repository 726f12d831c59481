"""CLI errors and exit codes: one red line and a code scripts can trust, never a traceback."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

import typer

from tessera.cli.output import err_console
from tessera.lab import LabError

EXIT_UNEXPECTED = 1
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_INVALID = 5
EXIT_UNAVAILABLE = 6
EXIT_UNAUTHORIZED = 7
EXIT_API_UNREACHABLE = 8
EXIT_LAB_FAILED = 9
EXIT_TASK_FAILED = 10
EXIT_QUOTA_EXCEEDED = 11

HTTP_EXIT_CODES: dict[int, int] = {
    401: EXIT_UNAUTHORIZED,
    403: EXIT_UNAUTHORIZED,
    404: EXIT_NOT_FOUND,
    409: EXIT_CONFLICT,
    422: EXIT_INVALID,
    503: EXIT_UNAVAILABLE,
}


class CliError(Exception):
    """An error the CLI reports in one line, exiting with `exit_code`."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn CliError and LabError into one red line and their exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CliError as exc:
            err_console.print(f"[red]error:[/] {exc.message}")
            raise typer.Exit(exc.exit_code) from None
        except LabError as exc:
            err_console.print(f"[red]lab error:[/] {exc}")
            raise typer.Exit(EXIT_LAB_FAILED) from None

    return wrapper
