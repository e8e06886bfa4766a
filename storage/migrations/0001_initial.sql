-- 0001_initial: every table the bot needs.
--
-- Conventions
--   * Times are UTC ISO-8601 text with microseconds and a Z, fixed width
--     ("2026-11-25T09:00:00.000000Z"), so text order is time order and `<=` works in SQL.
--     They are always passed in by the caller (storage never reads the clock for them).
--   * thread_id 0 means "no forum topic": SQLite's UNIQUE treats NULLs as distinct, so a NULL
--     would let the same chat subscribe twice. Telegram never uses 0 as a topic id.
--   * The runner executes this file statement by statement inside one transaction and records
--     it in schema_migrations (created by the runner itself). No BEGIN/COMMIT in here.
--
-- Tables
--   subscriptions   who gets alerts: (chat_id, thread_id) -> created_at.
--   tasks           the watcher's last view of each SMSC deferred task: status and name, and
--                   seen_at = when that status/name was first recorded (unchanged rows are not
--                   rewritten on every poll, which keeps a 10,000-task poll cheap).
--   state           small key/value store: poll bookkeeping, last error, flags, the baseline
--                   marker ("tasks.baseline_at").
--   alerts          the outbox: one row per detected event (completed, failed, canceled,
--                   smsc_problem, smsc_recovered) with a JSON payload for rendering.
--   deliveries      one row per (alert, chat, thread) fanned out at detection time, in the same
--                   transaction as the alert. state: pending -> delivered | dropped. A pending
--                   row is due when next_attempt_at <= now; attempts counts failed sends.
--   task_files      Telegram file_id of the completion document, uploaded once per task and
--                   then re-sent by id, with the facts its caption needs (sizes, row count).

CREATE TABLE subscriptions (
    chat_id     INTEGER NOT NULL,
    thread_id   INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (chat_id, thread_id)
) WITHOUT ROWID;

CREATE TABLE tasks (
    id          INTEGER PRIMARY KEY,
    -- No CHECK on the range: a status SMSC adds tomorrow must not make every poll fail.
    status      INTEGER NOT NULL,
    name        TEXT    NOT NULL,
    seen_at     TEXT    NOT NULL
);

-- load_known_statuses reads (id, status) of every task on each poll: this index holds exactly
-- that (status plus the rowid id), so the scan skips the names and stays small.
CREATE INDEX tasks_status ON tasks (status);

CREATE TABLE state (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
) WITHOUT ROWID;

-- AUTOINCREMENT: ids are never reused after pruning, so an id in an old log line keeps meaning
-- one alert (or one delivery).
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT    NOT NULL CHECK (kind IN (
                    'completed', 'failed', 'canceled', 'smsc_problem', 'smsc_recovered')),
    task_id     INTEGER,
    payload     TEXT    NOT NULL,
    created_at  TEXT    NOT NULL
);

CREATE INDEX alerts_created ON alerts (created_at);

CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- No ON DELETE CASCADE: pruning deletes an alert only once it has no deliveries left, and
    -- the foreign key makes any other path fail loudly instead of losing pending rows.
    alert_id        INTEGER NOT NULL REFERENCES alerts (id),
    chat_id         INTEGER NOT NULL,
    thread_id       INTEGER NOT NULL DEFAULT 0,
    state           TEXT    NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'delivered', 'dropped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    message_id      INTEGER,
    created_at      TEXT    NOT NULL,
    -- When it became delivered or dropped; NULL while pending. Pruning goes by this.
    finished_at     TEXT,
    -- One delivery per alert per destination: a chat migration that would create a second one
    -- drops the duplicate instead (never the same alert twice to one chat).
    UNIQUE (alert_id, chat_id, thread_id)
);

-- due_deliveries / next_due_at / count_pending only ever look at pending rows; a partial index
-- keeps them fast however much delivered history accumulates.
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
-- remove_chat / migrate_chat.
CREATE INDEX deliveries_pending_chat ON deliveries (chat_id) WHERE state = 'pending';
-- prune_delivered.
CREATE INDEX deliveries_finished ON deliveries (finished_at) WHERE state <> 'pending';

CREATE TABLE task_files (
    task_id     INTEGER PRIMARY KEY,
    file_id     TEXT    NOT NULL,
    filename    TEXT    NOT NULL,
    size        INTEGER NOT NULL,   -- bytes of the document as sent (zipped if compressed)
    compressed  INTEGER NOT NULL CHECK (compressed IN (0, 1)),
    original_size INTEGER NOT NULL, -- bytes of the CSV itself
    rows        INTEGER,            -- CSV data rows, NULL when not counted
    created_at  TEXT    NOT NULL
);
