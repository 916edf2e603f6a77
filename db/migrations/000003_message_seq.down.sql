ALTER TABLE chat.message ALTER COLUMN created_at DROP DEFAULT;
ALTER TABLE chat.conversation ALTER COLUMN created_at DROP DEFAULT;
DROP INDEX IF EXISTS chat.message_conversation_seq_key;
ALTER TABLE chat.message DROP COLUMN IF EXISTS seq;
ALTER TABLE chat.conversation DROP COLUMN IF EXISTS last_seq;
