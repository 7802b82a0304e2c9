"""The ``diffad`` command line (typer): ``main`` is the console entry point, ``app`` the typer app."""

from .main import app, main

__all__ = ["app", "main"]
