"""Faults of the machine, made for real: a corrupt segcli.db, a SEGCLI_HOME that is a file, a
read-only home, a full disk (a small tmpfs, filled), and Clarifai settings gRPC cannot use.

Each: exit code 12 (ExitCode.ENVIRONMENT) or 6 for settings, one `error:` line naming the path,
one `hint:` line with the fix, no traceback; `segcli doctor` reports instead of failing (exit 0,
`store` = corrupt / unwritable / full). A disk that fills mid-upload leaves the store consistent,
and the same command completes once space is freed.

Mounting needs root (or CAP_SYS_ADMIN); where it is refused the tmpfs cases skip with the reason.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from segcli.core.errors import ExitCode

from conftest import SEGCLI, mask_upload_argv, segcli_subprocess_env, stored_bytes

FAULT, OK = ExitCode.ENVIRONMENT, ExitCode.OK


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    from segcli.datasets.synth import generate_shapes

    out = tmp_path_factory.mktemp("faults-shapes")
    generate_shapes(out, n=100, size=32, seed=11, formats=("masks",))
    return out


def commands(data: Path) -> dict[str, list]:
    """The commands the issue names, as a user would type them."""
    return {
        "app list": ["app", "list"],
        "dataset upload": [
            *mask_upload_argv(data),
            "-q",
        ],
        "train": ["train", "--model", "m", "--app", "a", "--dataset", "d", "--set", "num_epochs=1", "--no-wait"],
        "doctor": ["doctor", "-o", "json"],
    }


def assert_one_line_fault(result, *named: str, code: int = FAULT) -> None:
    assert result.code == code, result.err
    lines = result.err.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), result.err
    assert "Traceback" not in result.err and "unexpected" not in result.err
    for text in named:
        assert text in lines[0], (text, lines[0])


def prepare(cli, data: Path, n_upload: bool = True) -> None:
    """App a, dataset d (with `data` uploaded), model m."""
    assert cli("app", "create", "a").code == OK
    assert cli("dataset", "create", "d", "--app", "a").code == OK
    assert cli("model", "create", "m", "--app", "a").code == OK
    if n_upload:
        assert cli(*commands(data)["dataset upload"]).code == OK


# -- tmpfs -------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs mounted for this test; skipped where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(disk: Path, leave_bytes: int = 0) -> Path:
    """Write a filler file until only about `leave_bytes` are free; return it."""
    filler = disk / f"filler-{uuid.uuid4().hex[:6]}"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(filler, "wb") as fh:
        try:
            fh.write(b"\0" * max(0, free - leave_bytes))
            fh.flush()
            if leave_bytes == 0:
                fh.write(b"\0" * 65536)  # whatever rounding left
        except OSError:
            pass  # full: that was the point
    return filler


def store_is_consistent(home: Path) -> int:
    """Every row's blobs exist, no temp file is left, SQLite finds no fault; returns the rows."""
    data = home / "data"
    db = sqlite3.connect(data / "segcli.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT image_blob, labelmap_blob FROM inputs").fetchall()
        orphans = db.execute(
            "SELECT COUNT(*) FROM annotations a LEFT JOIN inputs i ON a.input_id=i.id WHERE i.id IS NULL"
        ).fetchone()[0]
    finally:
        db.close()
    assert orphans == 0
    for digests in rows:
        for digest in digests:
            assert hashlib.sha256(stored_bytes(home, digest)).hexdigest() == digest
    assert not [p for p in (data / "blobs").rglob("*.tmp")], "a temp blob was left behind"
    return len(rows)


# -- a corrupt database ------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["app list", "dataset upload", "train", "doctor"])
def test_corrupt_database(cli, segcli_home, shapes, command):
    prepare(cli, shapes, n_upload=False)
    db = segcli_home / "data" / "segcli.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.write_bytes(os.urandom(8192))  # garbage where the database was
    result = cli(*commands(shapes)[command])
    if command == "doctor":
        assert result.code == OK, result.err
        report = result.json()
        assert (report["store"], report["store_path"]) == ("corrupt", str(db))
        assert "warning: the store" in result.err and f"mv {db}" in result.err
        return
    assert_one_line_fault(result, str(db), "corrupt")
    assert f"mv {db} {db}.corrupt" in result.err


def test_malformed_database_pages(cli, segcli_home, shapes):
    """A database whose header is fine but whose pages are not: "malformed", also exit 12."""
    prepare(cli, shapes)
    db = segcli_home / "data" / "segcli.db"
    cli("doctor")  # closes; checkpoint the WAL so the pages live in the main file
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(db, "r+b") as fh:
        fh.seek(4096 * 2)
        fh.write(os.urandom(4096 * 4))
    result = cli("dataset", "list", "--app", "a")
    assert_one_line_fault(result, str(db), "corrupt")
    assert cli("doctor", "-o", "json").json()["store"] == "corrupt"


# -- SEGCLI_HOME is a file -------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["app list", "dataset upload", "train", "doctor"])
def test_home_is_a_file(cli, tmp_path, monkeypatch, shapes, command):
    home = tmp_path / "home-file"
    home.write_text("not a folder\n")
    monkeypatch.setenv("SEGCLI_HOME", str(home))
    result = cli(*commands(shapes)[command])
    if command == "doctor":
        assert result.code == OK, result.err
        assert result.json()["store"] == "unwritable" and str(home) in result.json()["store_detail"]
        return
    assert_one_line_fault(result, f"SEGCLI_HOME ({home}) is not a directory")
    assert home.read_text() == "not a folder\n"


def test_config_set_with_home_a_file(cli, tmp_path, monkeypatch):
    home = tmp_path / "home-file"
    home.write_text("x")
    monkeypatch.setenv("SEGCLI_HOME", str(home))
    assert_one_line_fault(cli("config", "set", "app", "a"), "SEGCLI_HOME")


# -- a read-only home --------------------------------------------------------------------------------
@pytest.fixture
def read_only(small_disk, monkeypatch, cli, shapes):
    """A home with a store and data in it, then the file system remounted read-only."""
    home = small_disk / "home"
    monkeypatch.setenv("SEGCLI_HOME", str(home))
    prepare(cli, shapes)
    from segcli.cli.context import STATE

    STATE.close()
    done = subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot remount read-only: {done.stderr.strip()}")
    return home


def test_read_only_home(cli, read_only, shapes):
    """SQLite's WAL must create its -shm file beside the database even to read, so on a
    read-only home every store command stops, naming the store and the fix."""
    db = read_only / "data" / "segcli.db"
    for name, argv in commands(shapes).items():
        result = cli(*argv)
        if name == "doctor":
            assert result.code == OK, result.err
            report = result.json()
            assert (report["store"], report["store_path"]) == ("unwritable", str(db))
            assert "read-only file system" in report["store_detail"]
            continue
        assert_one_line_fault(result, str(db), "read-only file system")
        assert "SEGCLI_HOME" in result.err


# -- a full disk --------------------------------------------------------------------------------------
def test_full_disk(cli, small_disk, monkeypatch, shapes):
    home = small_disk / "home"
    monkeypatch.setenv("SEGCLI_HOME", str(home))
    prepare(cli, shapes, n_upload=False)
    from segcli.cli.context import STATE

    STATE.close()
    filler = fill(small_disk)
    db = home / "data" / "segcli.db"
    for name, argv in commands(shapes).items():
        result = cli(*argv)
        if name == "doctor":
            assert result.code == OK, result.err
            assert (result.json()["store"], result.json()["store_path"]) == ("full", str(db))
            continue
        # SQLite cannot even open its shared-memory file on a full disk: every store command
        # stops here, naming the disk and the fix.
        assert_one_line_fault(result, "no space left on the device holding", str(home))
        assert "df -h" in result.err
    filler.unlink()
    assert cli(*commands(shapes)["dataset upload"]).code == OK
    assert store_is_consistent(home) == 100


def test_disk_full_mid_upload_then_rerun(cli, small_disk, monkeypatch, shapes):
    """The disk fills while blobs are written: nothing half-written is left under a valid name,
    no row points at a missing blob, and the same command finishes once space is freed."""
    home = small_disk / "home"
    monkeypatch.setenv("SEGCLI_HOME", str(home))
    prepare(cli, shapes, n_upload=False)
    files = sum(p.stat().st_size for folder in ("images", "masks") for p in (shapes / folder).iterdir())
    filler = fill(small_disk, leave_bytes=files // 2)  # room for half of what the upload stores
    upload = commands(shapes)["dataset upload"]
    failed = cli(*upload)
    assert_one_line_fault(failed, "no space left on the device holding", str(home))
    stored = store_is_consistent(home)
    # Staged packs fill the disk (nothing stored), or a batch's rows do: batches are all-or-nothing.
    assert stored in (0, 64), stored
    filler.unlink()
    done = cli(*upload[:-1], "-o", "json")
    assert done.code == OK, done.err
    assert (done.json()["added"], done.json()["skipped"]) == (100 - stored, stored)
    assert store_is_consistent(home) == 100


# -- Clarifai settings gRPC cannot use -------------------------------------------------------------
def _cloud(monkeypatch, fake) -> None:
    for key, value in {**fake.env(), "SEGCLI_BACKEND": "clarifai", "SEGCLI_CLARIFAI_BACKOFF_S": "0.01"}.items():
        monkeypatch.setenv(key, value)


@pytest.mark.parametrize(
    "pat, what", [("abc\u00e9defgh", "non-ASCII"), ("abcdefgh\n", "line break"), ("abc defgh", "space")]
)
def test_pat_that_cannot_be_sent(cli, fake_clarifai, monkeypatch, pat, what):
    _cloud(monkeypatch, fake_clarifai)
    monkeypatch.setenv("CLARIFAI_PAT", pat)
    result = cli("app", "list")
    assert_one_line_fault(result, "CLARIFAI_PAT", what, code=ExitCode.CONFIG)
    assert pat.strip() not in result.err and fake_clarifai.calls.get("ListApps", 0) == 0
    stored = cli("config", "set", "pat", pat)
    assert_one_line_fault(stored, "segcli config set pat", what, code=ExitCode.CONFIG)


@pytest.mark.parametrize("base", ["not a url", "https://", "http://exa mple.com:80", "https://h:99999", "ftp://host"])
def test_api_base_that_is_no_address(cli, fake_clarifai, monkeypatch, base):
    _cloud(monkeypatch, fake_clarifai)
    monkeypatch.setenv("CLARIFAI_API_BASE", base)
    result = cli("app", "list")
    assert_one_line_fault(result, "CLARIFAI_API_BASE", base.strip(), code=ExitCode.CONFIG)
    assert fake_clarifai.calls.get("ListApps", 0) == 0


def test_https_to_a_plain_http_port_is_one_line(fake_clarifai, tmp_path):
    """gRPC's C core would log the TLS failure on stderr; segcli silences it and says why."""
    env = {**segcli_subprocess_env(tmp_path / "home"), **fake_clarifai.env(), "SEGCLI_BACKEND": "clarifai"}
    env["CLARIFAI_API_BASE"] = fake_clarifai.base_url.replace("http://", "https://")
    env.pop("GRPC_VERBOSITY", None)
    done = subprocess.run([*SEGCLI, "app", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == ExitCode.CONFIG, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and "does not speak TLS" in lines[0] and "http://HOST:PORT" in lines[1], done.stderr


# -- a folder segcli may not write -------------------------------------------------------------------
def _without_permission_override() -> list[str]:
    """A command prefix under which the permission bits apply: as is for a normal user; for
    root, setpriv drops CAP_DAC_OVERRIDE (root ignores modes otherwise)."""
    import shutil as sh

    if os.geteuid() != 0:
        return []
    if sh.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permission bits cannot be made to apply")
    return [
        "setpriv",
        "--bounding-set",
        "-dac_override,-dac_read_search",
        "--inh-caps",
        "-dac_override,-dac_read_search",
    ]


def test_home_without_write_permission(tmp_path, shapes):
    home = tmp_path / "home"
    env = segcli_subprocess_env(home)
    assert subprocess.run([*SEGCLI, "app", "create", "a"], env=env, capture_output=True).returncode == 0
    data = home / "data"
    data.chmod(0o555)
    try:
        prefix = _without_permission_override()
        for argv, code in ((["app", "list"], FAULT), (["app", "create", "b"], FAULT), (["doctor", "-o", "json"], OK)):
            done = subprocess.run([*prefix, *SEGCLI, *argv], env=env, capture_output=True, text=True, timeout=120)
            assert done.returncode == code, done.stderr
            if argv[0] == "doctor":
                import json

                report = json.loads(done.stdout)
                assert report["store"] == "unwritable" and "permission denied" in report["store_detail"]
                continue
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 2 and str(data / "segcli.db") in lines[0] and "permission denied" in lines[0]
            assert lines[1].startswith("hint: make ") and "Traceback" not in done.stderr
    finally:
        data.chmod(0o755)


@pytest.mark.parametrize(
    "errno_name, words",
    [
        ("EDQUOT", "disk quota exceeded"),
        ("EIO", "input/output error"),
        ("EPERM", "not permitted"),
        ("ENOSPC", "no space left"),
        ("EROFS", "read-only file system"),
        ("EACCES", "permission denied"),
    ],
)
def test_each_errno_is_named_with_its_path(errno_name, words, tmp_path):
    """Faults not every machine can make for real (a quota, a failing disk) are worded too."""
    import errno

    from segcli.core.faults import classify

    target = tmp_path / "blobs" / "ab" / "cdef"
    fault = classify(OSError(getattr(errno, errno_name), os.strerror(getattr(errno, errno_name)), str(target)))
    assert fault is not None and fault.exit_code == FAULT
    assert words in fault.message and str(target) in fault.message and fault.hint


def test_a_locked_store_and_a_programming_error_are_told_apart(tmp_path):
    from segcli.core.faults import classify

    db = tmp_path / "segcli.db"
    locked = classify(sqlite3.OperationalError("database is locked"), db_path=lambda: db)
    assert locked is not None and str(db) in locked.message and "another process" in locked.message
    assert classify(sqlite3.OperationalError("no such table: apps"), db_path=lambda: db) is None
    assert classify(ValueError("a bug")) is None
    # A failed ROLLBACK raised while handling a full disk is still a full disk.
    try:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError:
            raise sqlite3.OperationalError("cannot rollback - no transaction is active")
    except sqlite3.OperationalError as exc:
        full = classify(exc, db_path=lambda: db)
    assert full is not None and "no space left" in full.message


def test_doctor_reports_a_broken_config_instead_of_failing(cli, segcli_home):
    segcli_home.mkdir(parents=True, exist_ok=True)
    (segcli_home / "config.yaml").write_bytes(b"profiles: [unclosed\n")
    result = cli("doctor", "-o", "json")
    assert result.code == OK, result.err
    report = result.json()
    assert "not valid YAML" in report["config_error"] and report["store"] == "healthy"
    assert "warning: config:" in result.err
