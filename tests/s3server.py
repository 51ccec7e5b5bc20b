"""Pytest plugin: a real moto S3 server on 127.0.0.1 for the s3fs tests.

Load it from ``tests/conftest.py`` with ``pytest_plugins = ["tests.s3server"]``.

Fixtures:

* ``s3_endpoint`` (session): ``"http://127.0.0.1:<port>"`` of a ``python -m moto.server``
  subprocess started for this session and stopped at its end.
* ``s3_storage_options`` (session): fsspec/s3fs ``storage_options`` for that endpoint.
  Treat it as read-only; copy it (``{**opts, ...}``) to change anything.
* ``s3_bucket`` (function): the name of a fresh, empty bucket, removed afterwards.

Helper: :func:`upload` copies a local file or directory tree to ``s3://bucket/key``.

Every test that uses ``s3_endpoint`` (directly or through another fixture, but not through
``request.getfixturevalue``) gets the ``s3`` marker, so ``-m "not s3"`` deselects it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import fsspec
import pytest

HOST = "127.0.0.1"
#: Bounds, in seconds: server start-up (per attempt), graceful stop, one readiness probe.
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 1.0
#: Attempts with a new port if the chosen one was taken between probing and binding.
START_ATTEMPTS = 3
#: Dummy credentials: the server is a mock and must never see real ones.
DUMMY_KEY = "testing"
DUMMY_SECRET = "testing"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``s3`` marker (harmless if pyproject.toml declares it too)."""
    config.addinivalue_line(
        "markers", "s3: talks HTTP to a moto S3 server on 127.0.0.1 (started by a fixture)"
    )


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that depends on ``s3_endpoint`` with ``s3``.

    ``tryfirst`` so that the marker exists before pytest applies ``-m``.
    """
    for item in items:
        if "s3_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.s3)


def _free_port() -> int:
    """Return a TCP port on 127.0.0.1 that the kernel just reported free."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _server_env() -> dict[str, str]:
    """Return the subprocess environment: no AWS settings or proxies from the caller."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("AWS_", "BOTO_", "MOTO_")) and "PROXY" not in k.upper()
    }
    env.update(
        AWS_ACCESS_KEY_ID=DUMMY_KEY,
        AWS_SECRET_ACCESS_KEY=DUMMY_SECRET,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="*",
        PYTHONUNBUFFERED="1",
    )
    return env


def _answers_http(url: str) -> bool:
    """Return True if something answers HTTP at ``url`` (any status), bypassing proxies."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=PROBE_TIMEOUT_S):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _owns_listener(pid: int, port: int) -> bool:
    """Return True if process ``pid`` listens on ``HOST:port``.

    Guards against another pytest session's server that took the same port first.
    Without psutil, or if it cannot tell, the check is skipped.
    """
    try:
        import psutil
    except ImportError:
        return True
    proc = psutil.Process(pid)
    # psutil >= 6 renamed connections() to net_connections()
    get_conns = getattr(proc, "net_connections", None) or proc.connections
    try:
        conns = get_conns(kind="tcp")
    except (psutil.Error, OSError):
        return True
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in conns)


def _log_tail(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of the server log."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<no log: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc``; kill it if it does not exit within ``STOP_TIMEOUT_S``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=STOP_TIMEOUT_S)


def _start_server(log: IO[bytes], log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start moto on a free port; return the process and its endpoint, or fail the test.

    If the server exits early (e.g. another process took the port between probing and
    binding), retry with a new port; a server that never answers fails at once.
    """
    problems: list[str] = []
    for attempt in range(1, START_ATTEMPTS + 1):
        port = _free_port()
        endpoint = f"http://{HOST}:{port}"
        log.write(f"--- s3server attempt {attempt}: {endpoint}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_server_env(),
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while proc.poll() is None and time.monotonic() < deadline:
                if _answers_http(endpoint + "/") and _owns_listener(proc.pid, port):
                    return proc, endpoint
                time.sleep(0.05)
        except BaseException:
            _stop(proc)
            raise
        if proc.poll() is None:
            problems.append(f"{endpoint}: no HTTP answer within {START_TIMEOUT_S:.0f} s")
            _stop(proc)
            break
        problems.append(f"{endpoint}: server exited with code {proc.returncode}")
    pytest.fail(
        "could not start moto S3 server: "
        + "; ".join(problems)
        + f"\n--- tail of {log_path}:\n{_log_tail(log_path)}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start a moto S3 server on 127.0.0.1 for the session; yield its URL."""
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    with log_path.open("ab") as log:
        proc, endpoint = _start_server(log, log_path)
        try:
            yield endpoint
        finally:
            _stop(proc)


@pytest.fixture(scope="session")
def s3_storage_options(s3_endpoint: str) -> dict[str, Any]:
    """Return s3fs ``storage_options`` for the session's server (do not mutate).

    * dummy ``key``/``secret``: botocore never looks for real credentials.
    * no ``region_name`` in ``client_kwargs``: s3fs would send it as ``LocationConstraint`` on
      ``mkdir``, and moto rejects ``us-east-1`` there. No region is needed: botocore signs
      for ``us-east-1`` by default and moto does not check signatures.
    * ``use_listings_cache=False``: an instance's dircache would otherwise hide objects
      written by another instance, by :func:`upload` or by a previous test.
    * ``endpoint_url`` both top level and in ``client_kwargs`` (same value): the explicit
      top-level one overrides ``FSSPEC_S3_ENDPOINT_URL`` (set by the s3lab's env file), which
      would otherwise clash with ``client_kwargs`` ("multiple values for 'endpoint_url'").
    * bounded timeouts, so a hung server fails a test instead of hanging it.
    """
    return {
        "key": DUMMY_KEY,
        "secret": DUMMY_SECRET,
        "endpoint_url": s3_endpoint,
        "client_kwargs": {"endpoint_url": s3_endpoint},
        "config_kwargs": {
            "s3": {"addressing_style": "path"},
            "connect_timeout": 5,
            "read_timeout": 60,
            "retries": {"max_attempts": 3, "mode": "standard"},
        },
        "use_listings_cache": False,
    }


def _fresh_fs(storage_options: dict[str, Any]) -> Any:
    """Return a new, uncached s3fs filesystem for ``storage_options``."""
    return fsspec.filesystem("s3", skip_instance_cache=True, **storage_options)


@pytest.fixture
def s3_bucket(s3_storage_options: dict[str, Any]) -> Iterator[str]:
    """Create a fresh empty bucket; yield its name; remove it with its contents afterwards.

    fsspec caches filesystem instances by their arguments, so every test using the same
    ``s3_storage_options`` would otherwise share one s3fs instance (and its dircache and
    aiobotocore client) with all earlier tests. The instance cache is cleared before and
    after each test, so each test starts from a fresh instance view; the fixture's own
    filesystem bypasses the cache altogether (``skip_instance_cache=True``).
    """
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = _fresh_fs(s3_storage_options)
    name = f"test-{uuid.uuid4().hex[:8]}"
    fs.mkdir(name)
    try:
        yield name
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        fs.invalidate_cache()
        with contextlib.suppress(FileNotFoundError):
            fs.rm(name, recursive=True)


def upload(local_path: str | Path, url: str, storage_options: dict[str, Any]) -> None:
    """Copy a local file or directory tree to ``url`` (``s3://bucket/key``).

    A directory's files are stored under ``url`` with their relative paths as keys (hidden
    files such as ``.zarray`` included; empty directories have no S3 equivalent and are
    skipped). A file is stored at ``url`` itself, or under it if ``url`` ends with ``/``.
    """
    local = Path(local_path)
    # The cached instance for these options: the one the test's own code will get.
    fs = fsspec.filesystem("s3", **storage_options)
    root = url.rstrip("/")
    if local.is_dir():
        lpaths: list[str] = []
        rpaths: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(local):
            for filename in sorted(filenames):
                path = Path(dirpath, filename)
                lpaths.append(str(path))
                rpaths.append(f"{root}/{path.relative_to(local).as_posix()}")
        if lpaths:
            fs.put(lpaths, rpaths)
    elif local.is_file():
        fs.put_file(str(local), f"{root}/{local.name}" if url.endswith("/") else root)
    else:
        raise FileNotFoundError(local)
    fs.invalidate_cache(root)
