"""The error raised for bad user input (files, columns, scores, arguments)."""


class STSInputError(ValueError):
    """Bad input: the message names the file, row, column or argument at fault.

    `run_sts.py` prints it as a one-line error instead of a traceback.
    """
