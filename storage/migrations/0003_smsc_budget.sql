-- 0003_smsc_budget: SMSC's limits, remembered across restarts (and shared by processes).
--
-- One row per fact the SMSC client's etiquette needs after a restart. Rows are written in the
-- same transaction that decides whether a request may go out (BEGIN IMMEDIATE), and BEFORE the
-- request is sent, so a crash right after sending still counts it. The table stays small:
-- every such transaction deletes the rows that no longer matter.
--
--   scope  hex digest of the request's identity (operation and arguments, never credentials),
--          or '*' for facts about the whole account (backoffs, failed logins).
--   event  'sent'          a request: counts against the identical-request window until
--                          `until` + the window. While in flight `until` is the latest moment it
--                          can reach SMSC; once it has ended, the moment it ended.
--          'probe'         a request sent before the login was proven; deleted when its answer
--                          is known. One left behind by a crash counts as a failed login,
--                          unless the last login verdict was a success.
--          'login_failed'  SMSC answered error 2 at `at`.
--          'login_ok'      the latest answer that proved the login (then lost probes are moot).
--          'block_ip', 'block_auth', 'block_pause' (scope '*'), 'block_rate_limited' (a key):
--                          no request (of that key) until `until`.
--   at, until  UTC text like every other table. A row whose `at` is in the future (the wall
--          clock stepped back) is moved to "now" with its duration kept, so a step can neither
--          unlock the budget early nor lock it for ever.

CREATE TABLE smsc_budget (
    id      INTEGER PRIMARY KEY,
    scope   TEXT NOT NULL,
    event   TEXT NOT NULL,
    at      TEXT NOT NULL,
    until   TEXT NOT NULL
);

CREATE INDEX smsc_budget_scope ON smsc_budget (scope, event);
