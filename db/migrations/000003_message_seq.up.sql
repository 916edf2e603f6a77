-- Per-conversation, gap-free message sequence. conversation.last_seq is bumped in the same
-- transaction that stores a message, which serialises sends per conversation and gives cursors
-- and resume-after-reconnect a total order.
ALTER TABLE chat.conversation ADD COLUMN last_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE chat.message ADD COLUMN seq bigint;

-- Existing messages are numbered in the order they were written (id breaks ties).
UPDATE chat.message AS m
SET seq = ordered.seq
FROM (
  SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS seq
  FROM chat.message
) AS ordered
WHERE m.id = ordered.id;

UPDATE chat.conversation AS c
SET last_seq = counted.last_seq
FROM (SELECT conversation_id, max(seq) AS last_seq FROM chat.message GROUP BY conversation_id) AS counted
WHERE c.id = counted.conversation_id;

ALTER TABLE chat.message ALTER COLUMN seq SET NOT NULL;
CREATE UNIQUE INDEX message_conversation_seq_key ON chat.message (conversation_id, seq);

ALTER TABLE chat.conversation ALTER COLUMN created_at SET DEFAULT timezone('utc', now());
ALTER TABLE chat.message ALTER COLUMN created_at SET DEFAULT timezone('utc', now());
