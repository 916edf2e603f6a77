-- Replies (one level) and mentions (docs/design.md section 8).
--
-- A reply names its parent, a message of the same conversation that is not itself a reply (the
-- send path checks both under the conversation's row lock). The parent keeps reply_count and
-- last_reply_at, updated in the same transaction as the reply's insert, so history shows a
-- thread's size without counting. last_reply_at is a `timestamp` holding UTC like created_at, the
-- reply's created_at copied as it is.
--
-- mentioned_user_ids is what the message object shows. message_mention holds the same facts by
-- user, for the two reads that must not scan messages: the unread mentions of a user in one
-- conversation (primary key: user, conversation, seq > the read position) and a user's mentions
-- across conversations, newest first (user, created_at, message_id). A sender mentioning
-- themselves gets no row. Rows go when their message goes (the conversation's cascade).
--
-- All additions have constant defaults or are nullable: adding them does not rewrite the table,
-- and go-chatty's readers and writers are untouched.
ALTER TABLE chat.message
  ADD COLUMN parent_id uuid NULL REFERENCES chat.message(id) ON DELETE CASCADE,
  ADD COLUMN reply_count integer NOT NULL DEFAULT 0,
  ADD COLUMN last_reply_at timestamp NULL,
  ADD COLUMN mentioned_user_ids uuid[] NOT NULL DEFAULT '{}';

-- A thread's replies in seq order; also what the parent_id foreign key looks up when a message is
-- deleted. Partial: top-level messages (most of them) are not in it.
CREATE INDEX message_thread_idx ON chat.message (parent_id, seq) WHERE parent_id IS NOT NULL;

CREATE TABLE chat.message_mention (
  user_id         uuid NOT NULL,
  conversation_id uuid NOT NULL,
  seq             bigint NOT NULL,
  message_id      uuid NOT NULL REFERENCES chat.message(id) ON DELETE CASCADE,
  created_at      timestamp NOT NULL,
  PRIMARY KEY (user_id, conversation_id, seq)
);

CREATE INDEX message_mention_user_recent_idx ON chat.message_mention (user_id, created_at DESC, message_id DESC);
-- For the foreign key: deleting a message finds its mentions.
CREATE INDEX message_mention_message_idx ON chat.message_mention (message_id);
