-- Editing and deleting one's own messages. The message row holds what history shows: the
-- edited body with edited_at, or a tombstone (no content, deleted_at set) after a delete.
-- Every edit and delete is also an event with a seq of its own, taken from
-- conversation.last_seq under the same row lock as sends, so the conversation's seqs (messages
-- and events together) stay gap-free and a client resuming after a seq also gets the edits and
-- deletes it missed. go-chatty's columns are untouched; old readers see the new body, or a
-- NULL body once deleted.
ALTER TABLE chat.message ADD COLUMN edited_at timestamp NULL;
ALTER TABLE chat.message ADD COLUMN deleted_at timestamp NULL;

CREATE TABLE chat.message_event (
  conversation_id uuid NOT NULL REFERENCES chat.conversation(id) ON DELETE CASCADE,
  seq             bigint NOT NULL,
  message_id      uuid NOT NULL REFERENCES chat.message(id) ON DELETE CASCADE,
  -- 1 updated (edited), 2 deleted
  kind            smallint NOT NULL CHECK (kind IN (1, 2)),
  at              timestamp NOT NULL DEFAULT timezone('utc', now()),
  PRIMARY KEY (conversation_id, seq)
);

-- For the foreign key: deleting a message (a conversation's cascade) finds its events.
CREATE INDEX message_event_message_idx ON chat.message_event (message_id);
