"""What a user got wrong, as the product's own exceptions.

``UserError`` is raised where input is checked: an option out of range, an
unknown model or recipe, a path that does not exist or cannot be written, a
run directory that is not one, a damaged model file, a device that cannot be
reached. The command line prints its message as one line and exits with 1;
any other exception is a bug and keeps its traceback (``cli.py``).

``UserError`` is a ``ValueError``, so code that caught ``ValueError`` for bad
input still does; the two below also keep the built-in type their callers
caught before (``KeyError`` for a failed lookup, ``FileExistsError`` for an
output that is already there).
"""


class UserError(ValueError):
    """Input the product refuses; the message says what is wrong and what to do."""


class UnknownName(UserError, KeyError):
    """A name that is not in its registry (a model, a recipe); the message lists the names."""

    # KeyError's own __str__ would quote the message.
    __str__ = ValueError.__str__


class OutputExists(UserError, FileExistsError):
    """An output file that is already there and must not be replaced."""
