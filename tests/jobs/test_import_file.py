"""`mfa-whois import FILE` keeps its writer lease for as long as the import takes."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

from jobs.reindex import import_file
from jobs.runs import Runs
from phoneindex.db import open_database
from phoneindex.store import Store
from tests.conftest import T0
from tests.jobs.contender import LogSyncContender


def test_an_import_longer_than_the_lease_is_not_taken_over(db_url: str, tmp_path: Path) -> None:
    export = tmp_path / "users.json"
    export.write_text(
        "".join(json.dumps({"user_id": f"auth0|{n:024d}"}) + "\n" for n in range(12_000))
    )
    engine = open_database(db_url)
    store = Store(engine)
    runs = Runs(engine, store, lease_ttl=timedelta(seconds=2))  # real (database) time
    other_engine = open_database(db_url, busy_timeout_ms=50)  # another process, e.g. `clock`
    other = Runs(other_engine, Store(other_engine), lease_ttl=timedelta(seconds=2))
    contender = LogSyncContender(other)

    def slow_progress(done: int, total: int) -> None:  # each batch takes 0.8 s: 3.2 s in all
        contender.start()
        time.sleep(0.8)

    try:
        result = import_file(store, runs, export, observed_at=T0, progress=slow_progress)
        ended = time.monotonic()
    finally:
        contender.stop()
        other_engine.dispose()
    assert result.users == 12_000
    full = runs.last("full")
    assert full is not None and (full["status"], full["error"]) == ("succeeded", None)
    assert full["requested_by"] == "import:users.json"
    assert all(at > ended for at in contender.taken)  # a log sync ran only after the import
    engine.dispose()
