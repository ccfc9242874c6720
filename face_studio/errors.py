"""User-facing errors: the message says what was wrong and what to do. CLI prints it, exits non-zero;
the server turns it into ``gr.Error``."""


class UserError(Exception):
    """A bad input or environment the user can fix; never a bug."""
