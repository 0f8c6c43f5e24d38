"""Error text in logs without full phone numbers.

Our own log lines name a number by its last four digits at most, but an exception's text is
not ours: PostgreSQL's DETAIL of a failed statement quotes the row (`Key (phone)=(+14155550100)
already exists`), and SQLAlchemy's `hide_parameters` does not reach the server's own message.
This filter masks every E.164 number in a record's traceback and in exception arguments to its
message, leaving the last four digits (`+…0100`). Installed by every process on the root
logger's handlers and on uvicorn's error logger (which logs tracebacks of failed requests).
"""

from __future__ import annotations

import logging
import re

_E164 = re.compile(r"\+[1-9]\d{6,14}")
_FORMATTER = logging.Formatter()
SHOWN_DIGITS = 4
UVICORN_ERRORS = "uvicorn.error"


def mask_numbers(text: str) -> str:
    """`text` with every E.164 number cut to its last four digits."""
    return _E164.sub(lambda m: "+…" + m.group()[-SHOWN_DIGITS:], text)


class MaskErrorNumbers(logging.Filter):
    """Masks numbers in a record's traceback and in exceptions among its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's error text; never drops a record."""
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_numbers(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_numbers(record.stack_info)
        if isinstance(record.msg, BaseException):  # log.warning(exc)
            record.msg = mask_numbers(str(record.msg))
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, BaseException) for a in args):
            record.args = tuple(
                mask_numbers(str(a)) if isinstance(a, BaseException) else a for a in args
            )
        return True


def mask_error_logs() -> None:
    """Install the filter on the root logger's handlers and uvicorn's error logger (once)."""
    targets: list[logging.Filterer] = [*logging.getLogger().handlers]
    targets.append(logging.getLogger(UVICORN_ERRORS))
    for target in targets:
        if not any(isinstance(f, MaskErrorNumbers) for f in target.filters):
            target.addFilter(MaskErrorNumbers())
