"""``python -m diffad.cli``: the ``diffad`` command."""

from . import main

main()
