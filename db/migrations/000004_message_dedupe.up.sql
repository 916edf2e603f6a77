-- A retried send (same conversation, sender and dedupe_key) must find the first message instead
-- of storing a second. Older rows may already repeat a key: the earliest keeps it, later ones
-- lose it (the rows themselves are all kept).
UPDATE chat.message AS m
SET dedupe_key = NULL
FROM (
  SELECT id, row_number() OVER (PARTITION BY conversation_id, sender_id, dedupe_key ORDER BY seq) AS n
  FROM chat.message
  WHERE dedupe_key IS NOT NULL
) AS repeated
WHERE m.id = repeated.id AND repeated.n > 1;

CREATE UNIQUE INDEX message_dedupe_key ON chat.message (conversation_id, sender_id, dedupe_key)
  WHERE dedupe_key IS NOT NULL;
