"""deploy/backup_data.py: an online backup of DATA_DIR restores to the same data."""

import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "backup_data.py"


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        env={**os.environ, "DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_backup_while_a_connection_writes_then_restore(tmp_path):
    data = tmp_path / "data"
    (data / "media" / "videos").mkdir(parents=True)
    (data / "tmp" / "uploads").mkdir(parents=True)
    (data / "media" / "videos" / "a.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" * 100)
    (data / "tmp" / "uploads" / "partial.mov").write_bytes(b"in flight")

    live = sqlite3.connect(data / "db.sqlite3")
    live.execute("PRAGMA journal_mode=WAL")
    live.execute("CREATE TABLE entry (id INTEGER PRIMARY KEY, text TEXT)")
    live.executemany("INSERT INTO entry (text) VALUES (?)", [(f"entry {i}",) for i in range(500)])
    live.commit()
    live.execute("INSERT INTO entry (text) VALUES ('not committed')")  # open write transaction

    archive = Path(run(data, "backup").stdout.strip())
    live.rollback()
    assert archive.parent == data / "backups" and archive.name.endswith(".tar.gz")
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {"db.sqlite3", "media/videos/a.mp4"} <= names
    assert not any(name.startswith(("tmp", "backups")) for name in names)

    # Lose data, then restore it while the live connection stays open.
    live.execute("DELETE FROM entry")
    live.commit()
    (data / "media" / "videos" / "a.mp4").unlink()
    run(data, "restore", str(archive))

    assert live.execute("SELECT count(*) FROM entry").fetchone()[0] == 500
    assert (data / "media" / "videos" / "a.mp4").read_bytes().startswith(b"\x00\x00\x00\x18ftyp")
    live.close()
