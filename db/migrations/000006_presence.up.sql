-- Presence: which users have a live websocket on which api process. Each api process keeps its
-- row in presence_process alive with a heartbeat; a process that stops (crash, kill, partition)
-- simply lets expires_at pass, and its users count as offline from then on, whether or not
-- anyone has swept its rows yet. UNLOGGED: this is live state, rebuilt by the processes within
-- one heartbeat, so it needs no WAL; after a Postgres crash the tables come back empty and every
-- process re-registers its users on its next heartbeat.
CREATE UNLOGGED TABLE chat.presence_process (
    process_id uuid PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

CREATE INDEX presence_process_expires_idx ON chat.presence_process (expires_at);

-- No foreign key: a user row may briefly outlive a swept process (the sweep and a late add race);
-- readers join on live processes, and the sweep removes rows whose process is gone.
CREATE UNLOGGED TABLE chat.presence (
    user_id uuid NOT NULL,
    process_id uuid NOT NULL,
    PRIMARY KEY (user_id, process_id)
);

CREATE INDEX presence_process_user_idx ON chat.presence (process_id, user_id);
