-- go-chatty's chat schema as it stands after its own migration 2 (uuid ids), created directly.
-- Timestamps are `timestamp` (no time zone) holding UTC, as go-chatty wrote them.
CREATE SCHEMA IF NOT EXISTS chat;

CREATE TABLE chat.conversation (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  created_at timestamp NOT NULL,
  tenant_id  uuid
);

CREATE TABLE chat.participant (
  conversation_id uuid NOT NULL REFERENCES chat.conversation(id) ON DELETE CASCADE,
  user_id         uuid NOT NULL,
  role            smallint NOT NULL DEFAULT 0,
  last_read_msg   uuid,
  muted_until     timestamp NULL,
  PRIMARY KEY (conversation_id, user_id)
);

CREATE TABLE chat.message (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  conversation_id uuid NOT NULL REFERENCES chat.conversation(id) ON DELETE CASCADE,
  sender_id       uuid NOT NULL,
  created_at      timestamp NOT NULL,
  body            text,
  msg_type        smallint NOT NULL DEFAULT 0,
  attachment_url  text,
  attachment_meta json,
  dedupe_key      varchar(64)
);

CREATE INDEX idx_messages_conv_created ON chat.message (conversation_id, created_at);

CREATE TABLE chat.receipt (
  message_id uuid NOT NULL,
  user_id    uuid NOT NULL,
  status     smallint NOT NULL,
  at         timestamp NOT NULL,
  PRIMARY KEY (message_id, user_id, status)
);

CREATE TABLE chat.block (
  blocker_id uuid NOT NULL,
  blocked_id uuid NOT NULL,
  at         timestamp NOT NULL,
  PRIMARY KEY (blocker_id, blocked_id)
);
