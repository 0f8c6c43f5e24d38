"""uvicorn's access log never prints a phone number: a real server, its real output."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from bot.accesslog import ACCESS_LOGGER, MaskNumbers, mask_access_log, mask_target
from bot.web import create_app
from phoneindex.db import open_database
from phoneindex.settings import load_settings
from phoneindex.store import Store
from tests.serve_process import clean_env, running

NUMBER_FORMS = ("14155550100", "4155550100", "415-555-0100", "555-0100", "2B1415")
REQUESTS = [
    ("/healthz?phone=%2B14155550100", '"GET /healthz?phone=•••00 HTTP/1.1" 200'),
    ("/api/v1/lookup?phone=%2B14155550100", '"GET /api/v1/lookup?phone=•••00 HTTP/1.1"'),
    ("/api/v1/lookup?phone=415-555-0100&live=1", '"GET /api/v1/lookup?phone=•••00&live=1 HTTP'),
    ("/healthz?caller=%2B1%20(415)%20555-0100", '"GET /healthz?caller=•••00 HTTP/1.1" 200'),
    ("/lookup/%2B14155550100", '"GET /lookup/•••00 HTTP/1.1" 404'),
    ("/healthz?q=call+4155550100+now", '"GET /healthz?q=call •••00 now HTTP/1.1" 200'),
    ("/healthz?since=2026-11-27&n=5", '"GET /healthz?since=2026-11-27&n=5 HTTP/1.1" 200'),
]


@pytest.fixture
def unmasked_afterwards() -> Iterator[None]:
    """Each test installs the filter itself (or not); none is left behind for the next."""
    yield
    logger = logging.getLogger(ACCESS_LOGGER)
    for f in [f for f in logger.filters if isinstance(f, MaskNumbers)]:
        logger.removeFilter(f)


@contextmanager
def access_logged_server(tmp_path: Path) -> Iterator[httpx.Client]:
    """The real app on uvicorn in a thread, on a free port, access log on (as `serve -v`)."""
    url = f"sqlite:///{tmp_path / 'index.db'}"
    app = create_app(load_settings(database_url=url), store=Store(open_database(url)))
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="info")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.usefixtures("unmasked_afterwards")
def test_the_access_log_masks_numbers_in_request_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mask_access_log()
    mask_access_log()  # idempotent: one filter
    with access_logged_server(tmp_path) as client:
        for target, _line in REQUESTS:
            client.get(target)
    printed = capsys.readouterr().out

    for _target, line in REQUESTS:
        assert line in printed
    for form in NUMBER_FORMS:
        assert form not in printed
    filters = logging.getLogger(ACCESS_LOGGER).filters
    assert sum(isinstance(f, MaskNumbers) for f in filters) == 1


@pytest.mark.usefixtures("unmasked_afterwards")
def test_without_the_filter_uvicorn_prints_the_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Why the filter exists (and proof that the capture above sees uvicorn's output)."""
    with access_logged_server(tmp_path) as client:
        client.get("/healthz?phone=%2B14155550100")
    assert '"GET /healthz?phone=%2B14155550100 HTTP/1.1" 200' in capsys.readouterr().out


def test_masking_keeps_what_is_not_a_number() -> None:
    assert mask_target("/slack/events") == "/slack/events"
    assert mask_target("/healthz?phone=anonymous") == "/healthz?phone=anonymous"
    assert mask_target("/healthz?phone=12") == "/healthz?phone=•••"
    assert mask_target("/healthz?id=123456&a=%20") == "/healthz?id=123456&a=%20"
    assert mask_target("/x?To=%2B442079460958") == "/x?To=•••58"


def test_serve_installs_the_mask(tmp_path: Path) -> None:
    env = clean_env(DATABASE_URL=f"sqlite:///{tmp_path / 'index.db'}")
    args = ["-v", "serve", "--no-scheduler", "--host", "127.0.0.1"]
    with running(args, tmp_path, env) as served:
        httpx.get(f"{served.base}/api/v1/lookup?phone=%2B14155550100", timeout=5)
        served.stop(signal.SIGINT)
    printed = served.stdout + served.stderr
    assert '"GET /api/v1/lookup?phone=•••00 HTTP/1.1"' in printed
    assert "4155550100" not in printed
