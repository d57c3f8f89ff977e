"""``python -m anygram``: the command line (see :mod:`anygram.cli`)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="anygram")
