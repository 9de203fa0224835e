"""The one exception the data layer raises for bad or missing input."""


class DataError(RuntimeError):
    """A data file is missing, corrupt or malformed; the message is one line naming the fix."""
