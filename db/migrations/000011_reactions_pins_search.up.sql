-- Reactions, pins and search (docs/design.md, "Message features").
--
-- A reaction is a row per (message, user, reaction); the message row also keeps the aggregate
-- (reaction -> count) in `reactions`, changed in the same transaction as the row under the
-- conversation's row lock (every reaction takes the conversation's next seq), so every reader of
-- a message (history, live frames, replay, search, the conversation list) gets the counts with
-- the row itself: no query per message, no aggregation per page.
--
-- Reactions and pins are events of the conversation's seq order like edits and deletes (000007):
-- message_event gains their kinds, and the reacting user and the reaction for the reaction kinds,
-- so `join` with `since_seq` replays them gap-free with the messages.
--
-- Search matches an expression index (not a stored column, which every `SELECT *` of a message
-- would read): the query must use the same expression, to_tsvector('simple', coalesce(body, '')).
-- go-chatty's columns are untouched; a go-chatty database upgrades in place (the new columns have
-- constant defaults, so adding them does not rewrite the table).
ALTER TABLE chat.message ADD COLUMN reactions jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE chat.message ADD COLUMN pinned_at timestamp NULL;
ALTER TABLE chat.message ADD COLUMN pinned_by uuid NULL;

CREATE TABLE chat.reaction (
  message_id uuid NOT NULL REFERENCES chat.message(id) ON DELETE CASCADE,
  user_id    uuid NOT NULL,
  reaction   text NOT NULL CHECK (char_length(reaction) BETWEEN 1 AND 32),
  created_at timestamp NOT NULL DEFAULT timezone('utc', now()),
  PRIMARY KEY (message_id, user_id, reaction)
);

-- Who reacted with what, per message, in the order they reacted (the reactions list), and the
-- count per reaction of a message (the aggregate, when it is rebuilt).
CREATE INDEX reaction_message_idx ON chat.reaction (message_id, reaction, created_at);

-- The pins of a conversation, most recently pinned first; small (at most 50 per conversation).
CREATE INDEX message_pinned_idx ON chat.message (conversation_id, pinned_at DESC) WHERE pinned_at IS NOT NULL;

CREATE INDEX message_search_idx ON chat.message USING gin (to_tsvector('simple', coalesce(body, '')));

-- 3 reaction added, 4 reaction removed, 5 pinned, 6 unpinned.
ALTER TABLE chat.message_event DROP CONSTRAINT message_event_kind_check;
ALTER TABLE chat.message_event ADD CONSTRAINT message_event_kind_check CHECK (kind BETWEEN 1 AND 6);
ALTER TABLE chat.message_event ADD COLUMN user_id uuid NULL;
ALTER TABLE chat.message_event ADD COLUMN reaction text NULL;
