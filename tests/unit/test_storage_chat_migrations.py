"""storage.chat_migrations: remembering which group became which supergroup."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import (
    Database,
    close_database,
    list_chat_migrations,
    migrate_chat,
    migrated_from,
    migration_targets,
    open_database,
    record_chat_migration,
    subscribe,
)
from tests.fakes.storage_support import T0, at

pytestmark = pytest.mark.asyncio

OLD, NEW = -4001, -1004001


async def test_record_is_news_once_and_first_record_wins(db: Database) -> None:
    assert await record_chat_migration(db, OLD, NEW, now=T0)
    assert not await record_chat_migration(db, OLD, NEW, now=at(1))
    # A replayed or forged claim that the same group went elsewhere does not redirect it.
    assert not await record_chat_migration(db, OLD, -1009999, now=at(2))
    [migration] = await list_chat_migrations(db)
    assert (migration.old_chat_id, migration.new_chat_id, migration.migrated_at) == (OLD, NEW, T0)


async def test_same_id_is_not_a_migration(db: Database) -> None:
    assert not await record_chat_migration(db, OLD, OLD, now=T0)
    assert await list_chat_migrations(db) == []


async def test_lookups_both_ways(db: Database) -> None:
    await record_chat_migration(db, OLD, NEW, now=T0)
    await record_chat_migration(db, -4002, -1004002, now=at(1))
    assert await migrated_from(db, NEW) == [OLD]
    assert await migrated_from(db, OLD) == []
    assert await migration_targets(db) == {OLD: NEW, -4002: -1004002}
    assert [m.old_chat_id for m in await list_chat_migrations(db)] == [-4002, OLD]  # newest first


async def test_migrate_chat_records_the_mapping(db: Database) -> None:
    await subscribe(db, OLD, None, T0)
    assert await migrate_chat(db, OLD, NEW, now=at(1)) == 1
    assert await migration_targets(db) == {OLD: NEW}


async def test_mapping_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "restart.sqlite3"
    conn = await open_database(path, now=T0)
    try:
        await record_chat_migration(conn, OLD, NEW, now=T0)
    finally:
        await close_database(conn)
    conn = await open_database(path, now=at(5))
    try:
        assert await migrated_from(conn, NEW) == [OLD]
    finally:
        await close_database(conn)
