"""Error text in logs carries no full phone number, even when the database quotes one."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from jobs.logmask import UVICORN_ERRORS, MaskErrorNumbers, mask_error_logs, mask_numbers
from phoneindex.db import make_engine

PHONE = "+14155550100"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(MaskErrorNumbers())
    logger = logging.getLogger("tests.logmask")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)
    logger.propagate = True


def _duplicate_number_error(pg_url: str) -> IntegrityError:
    """A real PostgreSQL unique violation: its DETAIL quotes the row, number included."""
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TEMP TABLE seen (phone text PRIMARY KEY)"))
            conn.execute(text("INSERT INTO seen VALUES (:p)"), {"p": PHONE})
            conn.execute(text("INSERT INTO seen VALUES (:p)"), {"p": PHONE})
    except IntegrityError as exc:
        return exc
    finally:
        engine.dispose()
    raise AssertionError("the duplicate was accepted")


def test_a_database_error_quoting_a_number_is_logged_without_it(
    pg_url: str, logged: tuple[logging.Logger, io.StringIO]
) -> None:
    error = _duplicate_number_error(pg_url)
    assert PHONE in str(error)  # what the server says (hide_parameters cannot help here)
    logger, out = logged
    try:
        raise error
    except IntegrityError:
        logger.exception("import failed")
    logger.warning("import failed: %s", error)
    logger.warning(error)
    text_ = out.getvalue()
    assert PHONE not in text_ and "14155550100" not in text_
    assert "+…0100" in text_ and "already exists" in text_  # still useful to whoever reads it
    assert "Traceback" in text_


def test_other_log_text_is_left_alone(logged: tuple[logging.Logger, io.StringIO]) -> None:
    logger, out = logged
    logger.warning("imported %s accounts as of %s", "1,000,000", "2026-11-30 15:57:29Z")
    assert out.getvalue().strip() == "imported 1,000,000 accounts as of 2026-11-30 15:57:29Z"
    assert mask_numbers("user +442079460958 and +14155550100") == "user +…0958 and +…0100"


def test_every_process_installs_it_on_its_handlers_and_uvicorns_error_log() -> None:
    root = logging.getLogger()
    handler = logging.StreamHandler(io.StringIO())
    root.addHandler(handler)
    try:
        mask_error_logs()
        mask_error_logs()  # idempotent
        for target in (handler, logging.getLogger(UVICORN_ERRORS)):
            assert sum(isinstance(f, MaskErrorNumbers) for f in target.filters) == 1
    finally:
        root.removeHandler(handler)
