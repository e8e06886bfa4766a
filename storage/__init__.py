"""Persistence for the bot: every SQL statement of the project lives in this package.

Plain async functions over one `Database` (its connection, SQLite's or PostgreSQL's, and its
lock; see `db` for why each takes the lock); `connect` opens it, `migrate` keeps its schema;
times go in and come out as aware UTC datetimes supplied by the caller.
"""

from .alert_kinds import OUTCOME_KINDS, AlertKind, DeliveryState
from .chat_migrations import (
    ChatMigration,
    list_chat_migrations,
    migrated_from,
    migration_targets,
    record_chat_migration,
)
from .connect import (
    check_database,
    close_database,
    open_database,
    open_postgres,
    open_url,
    ping,
)
from .db import Database, StorageError
from .file_ids import CachedFile, get_cached_file, put_cached_file
from .languages import get_chat_language, set_chat_language
from .migrate import Migration, apply_migrations, load_migrations
from .outbox import (
    ALERT_KINDS,
    NewAlert,
    PendingDelivery,
    count_pending,
    due_deliveries,
    mark_delivered,
    mark_dropped,
    mark_retry,
    next_due_at,
    prune_delivered,
    record_poll,
)
from .state import StateEntry, get_state, get_state_entry, set_state
from .subscriptions import (
    Subscription,
    count_subscriptions,
    has_subscriptions,
    list_subscriptions,
    migrate_chat,
    remove_chat,
    subscribe,
    unsubscribe,
)
from .tasks import (
    TaskOutcome,
    TaskSnapshot,
    baseline_done,
    get_outcome,
    load_finished_ids,
    load_known_statuses,
    record_outcomes,
)

__all__ = [
    "ALERT_KINDS",
    "OUTCOME_KINDS",
    "AlertKind",
    "CachedFile",
    "ChatMigration",
    "Database",
    "DeliveryState",
    "Migration",
    "NewAlert",
    "PendingDelivery",
    "StateEntry",
    "StorageError",
    "Subscription",
    "TaskOutcome",
    "TaskSnapshot",
    "apply_migrations",
    "baseline_done",
    "check_database",
    "close_database",
    "count_pending",
    "count_subscriptions",
    "due_deliveries",
    "get_cached_file",
    "get_chat_language",
    "get_outcome",
    "get_state",
    "get_state_entry",
    "has_subscriptions",
    "list_chat_migrations",
    "list_subscriptions",
    "load_finished_ids",
    "load_known_statuses",
    "load_migrations",
    "mark_delivered",
    "mark_dropped",
    "mark_retry",
    "migrate_chat",
    "migrated_from",
    "migration_targets",
    "next_due_at",
    "open_database",
    "open_postgres",
    "open_url",
    "ping",
    "prune_delivered",
    "put_cached_file",
    "record_chat_migration",
    "record_outcomes",
    "record_poll",
    "remove_chat",
    "set_chat_language",
    "set_state",
    "subscribe",
    "unsubscribe",
]
