"""Helpers every command module shares: the error format and exit code, option parsing."""

from __future__ import annotations

import functools

import typer

from ..exceptions import DiffadError
from ..validation import command_line

__all__ = ["exit_error", "user_errors", "parse_list", "parse_ints"]


def exit_error(exc: Exception) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=2)


def user_errors(fn):
    """Run a command with messages that name command-line options, and turn diffad's errors (and the
    operating system's, such as a full disk) into a one-paragraph message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with command_line():
            try:
                return fn(*args, **kwargs)
            except DiffadError as exc:
                exit_error(exc)
            except OSError as exc:
                where = f" ({exc.filename})" if exc.filename else ""
                exit_error(
                    DiffadError(
                        f"{exc.strerror or exc}{where}. Check the path and its permissions, and the free disk space."
                    )
                )

    return wrapper


def parse_list(text: str, option: str, kind: type = int) -> tuple:
    """Comma-separated values of ``kind`` (int or float) from an option's text."""
    try:
        return tuple(kind(part) for part in text.split(",") if part.strip())
    except ValueError:
        what, example = ("integers", "0,1,2") if kind is int else ("numbers", "0,0.5,1")
        raise DiffadError(
            f"{option}: expected comma-separated {what} such as {example}, got {text!r}."
        ) from None


def parse_ints(text: str, option: str) -> tuple[int, ...]:
    return parse_list(text, option, int)
