"""Database settings and the SQLite write/read paths: acknowledged commits are
durable, group commit shares one COMMIT among concurrent writers (a failing writer
fails alone), and reads never wait for the writer lock."""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import event, text

from server.platform.database import make_engine, make_read_engine, make_session_factory
from server.platform.migrate import upgrade
from server.platform.group_commit import GroupCommit
from server.platform.hot_reads import Reads
from server.platform.unit_of_work import UnitOfWork


def test_commits_are_durable_on_every_connection(app):
    engine = app.engine
    if engine.dialect.name == "sqlite":
        for eng in (engine, make_read_engine(engine)):
            with eng.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    else:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar() == "on"


@pytest.fixture
def sqlite_engine(tmp_path):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def insert_counter(key: str, fail: bool = False):
    def job(conn):
        conn.execute(text("INSERT INTO rate_counters (key, window_start, count) VALUES (:k, 0, 1)"), {"k": key})
        if fail:
            raise ValueError(key)
        return key

    return job


def test_group_commit_batches_waiting_writers_and_a_failing_one_fails_alone(sqlite_engine):
    commits = []
    event.listen(sqlite_engine, "commit", lambda conn: commits.append(1))
    group = GroupCommit(sqlite_engine)
    started, release = threading.Event(), threading.Event()

    def blocker(conn):
        started.set()
        release.wait(10)
        return insert_counter("first")(conn)

    with ThreadPoolExecutor(max_workers=11) as pool:
        first = pool.submit(group, blocker)
        assert started.wait(10)  # the writer runs the blocker's batch; the rest queue behind it
        deadline = time.monotonic() + 10
        others = [pool.submit(group, insert_counter(f"k{i}", fail=(i == 3))) for i in range(10)]
        while group._queue.qsize() != 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        release.set()
        assert first.result(10) == "first"
        results = []
        for i, f in enumerate(others):
            if i == 3:
                with pytest.raises(ValueError):
                    f.result(10)
            else:
                results.append(f.result(10))

    assert results == [f"k{i}" for i in range(10) if i != 3]
    with sqlite_engine.connect() as conn:
        keys = set(conn.execute(text("SELECT key FROM rate_counters")).scalars())
    assert keys == {"first"} | set(results)
    # One COMMIT for the blocker, one for the nine others (the failed try was rolled back).
    assert len(commits) == 2


def test_reads_do_not_wait_for_the_writer(sqlite_engine):
    reads = Reads(make_read_engine(sqlite_engine))
    with UnitOfWork(make_session_factory(sqlite_engine)) as uow:
        uow.session.execute(text("INSERT INTO rate_counters (key, window_start, count) VALUES ('w', 0, 1)"))
        # The writer lock is held (BEGIN IMMEDIATE, uncommitted row): reads still answer at once.
        with ThreadPoolExecutor(max_workers=2) as pool:
            one = pool.submit(reads.one, "SELECT count(*) FROM rate_counters", {})
            assert one.result(timeout=2) == (0,)

            def snapshot():
                with reads() as conn:
                    return conn.execute(text("SELECT count(*) FROM rate_counters")).scalar()

            assert pool.submit(snapshot).result(timeout=2) == 0
        uow.commit()
    assert reads.one("SELECT count(*) FROM rate_counters", {}) == (1,)


def test_a_kept_read_connection_holds_no_snapshot_between_reads(sqlite_engine):
    """Reads.one keeps its connection and cursor per thread; an open read snapshot would
    pin the WAL (no checkpoint could reset it) and grow it without bound."""
    reads = Reads(make_read_engine(sqlite_engine))
    with UnitOfWork(make_session_factory(sqlite_engine)) as uow:
        uow.session.execute(text("INSERT INTO rate_counters (key, window_start, count) VALUES ('a', 0, 1), ('b', 0, 1)"))
        uow.commit()
    assert reads.one("SELECT key FROM rate_counters ORDER BY key", {}) == ("a",)  # a statement with more rows
    # A TRUNCATE checkpoint completes only if no reader holds a snapshot (busy = 0).
    outside = sqlite3.connect(sqlite_engine.url.database, isolation_level=None)
    try:
        outside.execute("PRAGMA busy_timeout=0")
        busy, _log, _done = outside.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        outside.close()
    assert busy == 0


def test_group_commit_waits_for_concurrent_writers_but_not_for_a_lone_one(sqlite_engine):
    commits = []
    event.listen(sqlite_engine, "commit", lambda conn: commits.append(1))
    group = GroupCommit(sqlite_engine, delay=0.5)
    started = time.monotonic()
    assert group(insert_counter("alone")) == "alone"
    assert time.monotonic() - started < 0.3  # no sign of concurrent writers: committed at once
    # Two writers queue behind a third's batch and share the next one: now writers are
    # concurrent, so the batch after waits up to the delay and a writer 0.1 s late joins it.
    release = threading.Event()

    def blocker(conn):
        release.wait(10)
        return insert_counter("first")(conn)

    with ThreadPoolExecutor(max_workers=3) as pool:
        first = pool.submit(group, blocker)
        time.sleep(0.05)
        queued = [pool.submit(group, insert_counter(k)) for k in ("second", "third")]
        while group._queue.qsize() != 2:
            time.sleep(0.01)
        release.set()
        assert [f.result(10) for f in (first, *queued)] == ["first", "second", "third"]
        before = len(commits)
        early = pool.submit(group, insert_counter("early"))
        time.sleep(0.1)
        late = pool.submit(group, insert_counter("late"))
        assert (early.result(10), late.result(10)) == ("early", "late")
    assert len(commits) - before == 1  # one COMMIT for both


@pytest.fixture
def deferred_fk(app):
    """A child table whose foreign key is checked at COMMIT: a job that breaks it makes
    the batch's COMMIT itself fail (as a full disk does), on either backend."""
    with app.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE gc_parent (id INTEGER PRIMARY KEY)")
        conn.exec_driver_sql("CREATE TABLE gc_child (id INTEGER PRIMARY KEY, parent_id INTEGER "
                             "REFERENCES gc_parent (id) DEFERRABLE INITIALLY DEFERRED)")
    yield
    with app.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE gc_child")
        conn.exec_driver_sql("DROP TABLE gc_parent")


def test_group_commit_recovers_from_a_failed_commit(app, deferred_fk):
    """Issue 17: one failed COMMIT left the writer's connection in a failed transaction
    and every later batch failed until a restart."""
    group = GroupCommit(app.engine)

    def orphan(conn):
        conn.execute(text("INSERT INTO gc_child (id, parent_id) VALUES (1, 999)"))
        return "orphan"

    with pytest.raises(Exception) as failed:
        group(orphan)
    assert "foreign key" in str(failed.value).lower()
    # The next batches work, on the same writer.
    assert group(insert_counter("after")) == "after"
    assert group(insert_counter("again")) == "again"
    with app.engine.connect() as conn:
        assert set(conn.execute(text("SELECT key FROM rate_counters")).scalars()) == {"after", "again"}
        assert conn.execute(text("SELECT count(*) FROM gc_child")).scalar() == 0


def test_the_sqlite_writer_lock_is_held_through_commit(sqlite_engine):
    """Issue 17: the in-process writer lock was released before COMMIT ran, so the next
    writer's BEGIN IMMEDIATE met SQLite's own lock and waited in its busy handler. Here a
    listener runs after the engine's own at COMMIT time and lets another writer start: it
    must get through at once (the COMMIT is done and the lock free), not wait."""
    other_done = threading.Event()

    def other_writer():
        with sqlite_engine.begin() as conn:
            conn.execute(text("INSERT INTO rate_counters (key, window_start, count) VALUES ('other', 0, 1)"))
        other_done.set()

    waited = []

    def at_commit(conn):
        if threading.current_thread() is first_writer and not waited:
            threading.Thread(target=other_writer, daemon=True).start()
            waited.append(other_done.wait(3))

    first_writer = threading.current_thread()
    event.listen(sqlite_engine, "commit", at_commit)
    with sqlite_engine.begin() as conn:
        conn.execute(text("INSERT INTO rate_counters (key, window_start, count) VALUES ('first', 0, 1)"))
    assert waited == [True]
    assert other_done.wait(30)
    with sqlite_engine.connect() as conn:
        assert set(conn.execute(text("SELECT key FROM rate_counters")).scalars()) == {"first", "other"}
