"""The one error type of jaxgan.data."""


class DataError(ValueError):
    """Bad input data: the message names the file (or dataset) and what was expected."""
