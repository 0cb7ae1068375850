"""The exception type for bad data: malformed samples, unsafe paths, missing files.

Messages are written for the person who has to fix the data: they say which file,
which sample or field, the offending value and what would have been accepted.
"""


class DataError(ValueError):
    """Raised when a dataset, tokenizer file or sample cannot be used as given."""
