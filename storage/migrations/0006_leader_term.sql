-- 0006_leader_term: the fencing token of leadership (PostgreSQL replicas).
--
-- One row: `epoch` grows by one each time a replica takes the leader lock (`storage.fencing.
-- begin_term`), with who took it and since when. A delivery is sent only after its claim
-- (`claim_delivery`) wrote this process's epoch into `deliveries.claimed_epoch`, which succeeds
-- only while that epoch is still the current one: an old leader that has not noticed it lost
-- the lock can no longer send. SQLite (one process) never starts a term: epoch stays 0.
CREATE TABLE leader_term (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    epoch    INTEGER NOT NULL,
    replica  TEXT    NOT NULL,
    since    TEXT
);

INSERT INTO leader_term (id, epoch, replica, since) VALUES (1, 0, '', NULL);

-- The term that last claimed the pending row (NULL: never claimed); for diagnosis after a
-- failover: a row claimed by an older term and still pending was cut off mid-send.
ALTER TABLE deliveries ADD COLUMN claimed_epoch INTEGER;
