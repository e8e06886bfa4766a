-- 0002_task_outcomes: one outcome per task, ever, so a status flap never repeats an alert.
--
-- Why
--   SMSC serves lists from replicas that can lag: a task seen completed (2), then in progress
--   (1), then completed again looked like two completions, and got two alerts. `tasks.status`
--   only remembers the latest label, so the watcher also needs to remember what it already
--   concluded about each task.
--
-- The rule (also in bot/watcher.py)
--   A task's FIRST final status (2 completed, 3 canceled, 4 failed) is its outcome, recorded
--   here once and never changed. Only that first observation can queue an alert, and only once
--   (task_id is the key). Every later final label is a relabel or a lagging replica and is
--   ignored, whatever it says:
--     2 -> 1 -> 2   one completion alert (the second 2 is the lag catching up);
--     2 -> 1 -> 4   one completion alert and no failure alert: a finished task that SMSC
--                   relabels was already reported (the same rule as a direct 2 -> 4 before);
--     3 -> 1 -> 2   a canceled task (notice or not) never alerts a completion later.
--   Tasks already finished when the first poll (the baseline) runs, or canceled while
--   NOTIFY_CANCELED is off, get a row with alerted = 0: they are finished, nothing was said,
--   and nothing will be.
--   The table is never pruned (unlike alerts, pruned after 30 days): "ever" has to outlive the
--   outbox. One small row per finished task.
--
-- Table
--   task_outcomes   task_id -> kind (completed | failed | canceled), alerted (1 if an alert was
--                   queued for it), recorded_at (when the outcome was first seen).
--
-- Backfill
--   First every task that already has an outcome alert in the outbox (alerted = 1, its first
--   alert's kind and time), then every stored task whose last status is final (alerted = 0).
--   Alerts pruned before this migration are gone: such tasks are backfilled from their
--   status, which is at worst "finished, not alerted" and so still never alerts again.

CREATE TABLE task_outcomes (
    task_id     INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('completed', 'failed', 'canceled')),
    alerted     INTEGER NOT NULL CHECK (alerted IN (0, 1)),
    recorded_at TEXT    NOT NULL
);

INSERT INTO task_outcomes (task_id, kind, alerted, recorded_at)
SELECT a.task_id, a.kind, 1, a.created_at
  FROM alerts AS a
 WHERE a.task_id IS NOT NULL
   AND a.kind IN ('completed', 'failed', 'canceled')
   AND a.id = (SELECT MIN(b.id) FROM alerts AS b
                WHERE b.task_id = a.task_id AND b.kind IN ('completed', 'failed', 'canceled'));

INSERT INTO task_outcomes (task_id, kind, alerted, recorded_at)
SELECT id,
       CASE status WHEN 2 THEN 'completed' WHEN 3 THEN 'canceled' ELSE 'failed' END,
       0,
       seen_at
  FROM tasks
 WHERE status IN (2, 3, 4)
ON CONFLICT (task_id) DO NOTHING;
