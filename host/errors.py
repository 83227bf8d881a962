"""The one exception type users see.

Every error a user can cause (bad file, bad spec, mismatched model) is raised as
``FlipLabError`` with a one-line message naming the problem; ``host.cli`` prints it
as ``host: error: <message>`` and exits with status 2. Anything else is a bug.
"""


class FlipLabError(Exception):
    """A user-facing error: the message is one line and names the problem."""
