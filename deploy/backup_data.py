#!/usr/bin/env python3
"""Back up or restore DATA_DIR (SQLite databases and media) while the app runs.

    python deploy/backup_data.py backup [ARCHIVE]
    python deploy/backup_data.py restore ARCHIVE

ARCHIVE defaults to DATA_DIR/backups/the_flip-<UTC time>.tar.gz.

backup: every *.sqlite3 in DATA_DIR is copied with SQLite's online backup API (a
consistent snapshot even while the web and the worker write; never copy a live
database file with cp), then the media folder is added as is. With DATABASE_URL
set, the database is PostgreSQL: back it up with pg_dump; this still saves media.

restore: the databases are written back with the same API (other connections see
the restored content at once) and the media files are extracted over DATA_DIR's
media. Restart the app afterwards (fly apps restart, a Railway redeploy, docker
restart) so that no process holds state from before.

Standard library only: runs in the container (/app/deploy/backup_data.py) or on the
host next to a DATA_DIR.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sqlite3
import sys
import tarfile
import tempfile
from pathlib import Path

SKIP_DIRS = {"backups", "tmp"}  # our own archives; uploads and transcodes in flight
# Python's safe extraction filter where this Python has it (3.11.4+, and Debian's 3.11.2).
SAFE = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}


def data_dir() -> Path:
    value = os.environ.get("DATA_DIR") or os.environ.get("RAILWAY_VOLUME_MOUNT_PATH") or "data"
    return Path(value).resolve()


def copy_database(source: Path, destination: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)
    dst = sqlite3.connect(destination, timeout=30)
    try:
        with dst:
            src.backup(dst, pages=1024)
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise SystemExit(f"{destination.name}: integrity check failed: {check}")
    finally:
        src.close()
        dst.close()


def backup(root: Path, archive: Path | None) -> Path:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    archive = archive or root / "backups" / f"the_flip-{stamp}.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    databases = sorted(root.glob("*.sqlite3"))
    if not databases and not os.environ.get("DATABASE_URL"):
        raise SystemExit(f"no *.sqlite3 in {root}: is DATA_DIR right?")
    partial = archive.with_name(archive.name + ".partial")
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(partial, "w:gz") as tar:
        for database in databases:
            snapshot = Path(scratch) / database.name
            copy_database(database, snapshot)
            tar.add(snapshot, arcname=database.name)
            print(f"database {database.name}: {snapshot.stat().st_size} bytes", file=sys.stderr)
        for entry in sorted(root.iterdir()):
            if entry.is_dir() and entry.name not in SKIP_DIRS:
                tar.add(entry, arcname=entry.name)
    partial.replace(archive)
    give_back(archive.parent)
    print(f"backup written: {archive} ({archive.stat().st_size} bytes)", file=sys.stderr)
    return archive


def restore(root: Path, archive: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch, tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            unsafe = member.name.startswith("/") or ".." in Path(member.name).parts
            if member.issym() or member.islnk():
                unsafe = unsafe or member.linkname.startswith("/") or ".." in member.linkname
            if unsafe or member.isdev():
                raise SystemExit(f"refusing unsafe entry in archive: {member.name}")
        databases = [
            m for m in members if m.isfile() and "/" not in m.name and m.name.endswith(".sqlite3")
        ]
        tar.extractall(scratch, members=databases, **SAFE)
        for member in databases:
            copy_database(Path(scratch) / member.name, root / member.name)
            print(f"database {member.name}: restored", file=sys.stderr)
        others = [m for m in members if m not in databases]
        tar.extractall(root, members=others, **SAFE)
        print(f"restored {len(others)} files and folders into {root}", file=sys.stderr)
    give_back(root)


def give_back(root: Path) -> None:
    """Run as root (docker exec, fly ssh console): leave files to DATA_DIR's owner, the app."""
    if os.geteuid() != 0:
        return
    owner = root.stat()
    for path in [root, *root.rglob("*")]:
        info = path.lstat()
        if (info.st_uid, info.st_gid) != (owner.st_uid, owner.st_gid):
            os.lchown(path, owner.st_uid, owner.st_gid)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("backup", help="write a .tar.gz of DATA_DIR")
    make.add_argument("archive", nargs="?", type=Path)
    back = sub.add_parser("restore", help="restore DATA_DIR from a .tar.gz")
    back.add_argument("archive", type=Path)
    args = parser.parse_args(argv)
    root = data_dir()
    if args.command == "backup":
        print(backup(root, args.archive))
    else:
        restore(root, args.archive)
    return 0


if __name__ == "__main__":
    sys.exit(main())
