"""Issue 17 §1: health tells the truth. Readiness follows the database (reachable, at the
schema head, on SQLite the very file opened); a server whose schema is behind refuses to
start and says what to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from server.platform.database import make_engine
from server.platform.migrate import upgrade
from server.platform.readiness import Readiness
from server.platform.settings import ROOT


def test_readiness_notices_a_replaced_or_deleted_sqlite_file(tmp_path):
    path = tmp_path / "db.sqlite"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    try:
        readiness = Readiness(engine)
        assert readiness.check() is None
        shutil.copy(path, tmp_path / "copy.sqlite")
        os.replace(tmp_path / "copy.sqlite", path)  # same content, another file
        assert "deleted or replaced" in readiness.check()
        path.unlink()
        assert "deleted or replaced" in readiness.check()
    finally:
        engine.dispose()


def test_readiness_requires_the_schema_head(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    engine = make_engine(url)
    try:
        engine.connect().close()  # the file exists, unmigrated
        readiness = Readiness(engine)
        assert "python -m server migrate" in readiness.check()
        upgrade(url)
        assert readiness.check() is None
    finally:
        engine.dispose()


def test_a_server_on_an_unmigrated_database_refuses_to_start(tmp_path):
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite'}", GRPC_PORT="0", METRICS_PORT="")
    env.pop("METRICS_PORT")
    done = subprocess.run([sys.executable, "-m", "server", "serve"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    assert "run `python -m server migrate`" in done.stderr
