"""Persistence for the bot: every SQL statement of the project lives in this package.

Plain async functions over one `aiosqlite.Connection` (see `db` for why each takes the
connection's lock); times go in and come out as aware UTC datetimes supplied by the caller.
"""

from .db import (
    Migration,
    StorageError,
    apply_migrations,
    close_database,
    load_migrations,
    locked,
    open_database,
    ping,
    transaction,
)
from .files import CachedFile, delete_cached_file, get_cached_file, put_cached_file
from .outbox import (
    ALERT_KINDS,
    AlertKind,
    NewAlert,
    PendingDelivery,
    count_pending,
    due_deliveries,
    mark_delivered,
    mark_dropped,
    mark_retry,
    next_due_at,
    outbox_stats,
    prune_delivered,
    record_poll,
)
from .state import StateEntry, get_state, get_state_entry, set_state
from .subscriptions import (
    Subscription,
    count_subscriptions,
    is_subscribed,
    list_subscriptions,
    migrate_chat,
    remove_chat,
    subscribe,
    unsubscribe,
)
from .tasks import (
    KnownTask,
    TaskSnapshot,
    baseline_done,
    count_known_tasks,
    get_known_task,
    load_known_statuses,
)

__all__ = [
    "ALERT_KINDS",
    "AlertKind",
    "CachedFile",
    "KnownTask",
    "Migration",
    "NewAlert",
    "PendingDelivery",
    "StateEntry",
    "StorageError",
    "Subscription",
    "TaskSnapshot",
    "apply_migrations",
    "baseline_done",
    "close_database",
    "count_known_tasks",
    "count_pending",
    "count_subscriptions",
    "delete_cached_file",
    "due_deliveries",
    "get_cached_file",
    "get_known_task",
    "get_state",
    "get_state_entry",
    "is_subscribed",
    "list_subscriptions",
    "load_known_statuses",
    "load_migrations",
    "locked",
    "mark_delivered",
    "mark_dropped",
    "mark_retry",
    "migrate_chat",
    "next_due_at",
    "open_database",
    "outbox_stats",
    "ping",
    "prune_delivered",
    "put_cached_file",
    "record_poll",
    "remove_chat",
    "set_state",
    "subscribe",
    "transaction",
    "unsubscribe",
]
