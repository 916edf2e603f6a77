-- Frames too large for a NOTIFY payload (8000 bytes): the Postgres bus stores such a frame here,
-- in the transaction that sends the NOTIFY, and the notification carries only its id; every
-- listening process fetches it by that id. A row is needed only until the listeners have fetched
-- it (milliseconds), so publishers delete rows older than a minute. UNLOGGED: in-flight live
-- state, like presence; the bus delivers at most once and resume by seq covers what it loses.
CREATE UNLOGGED TABLE chat.bus_frame (
    id text PRIMARY KEY,
    frame text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX bus_frame_created_idx ON chat.bus_frame (created_at);
