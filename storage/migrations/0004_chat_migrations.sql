-- 0004_chat_migrations: groups that Telegram upgraded to supergroups.
--
-- A group's id changes when it becomes a supergroup (the service messages migrate_to_chat_id /
-- migrate_from_chat_id, or a ChatMigrated error on a send). Subscriptions move to the new id,
-- and the access gate lets the new id in when the old one is in ALLOWED_CHAT_IDS: this table is
-- what remembers that, across restarts, without anyone editing the configuration.
--   old_chat_id   the group's id before; a group is upgraded at most once, hence the key.
--   new_chat_id   the supergroup's id.
--   migrated_at   when the bot learnt of it (UTC text, as everywhere).

CREATE TABLE chat_migrations (
    old_chat_id INTEGER PRIMARY KEY,
    new_chat_id INTEGER NOT NULL,
    migrated_at TEXT    NOT NULL
);

-- The access gate asks "which old id does this chat come from?".
CREATE INDEX chat_migrations_new ON chat_migrations (new_chat_id);
