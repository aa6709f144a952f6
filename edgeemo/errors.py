"""The one error type users see: its message is a single line naming the file, field or flag at fault."""


class EdgeemoError(Exception):
    """Bad input or a failed step; the CLI prints the message on one line and exits 2."""
