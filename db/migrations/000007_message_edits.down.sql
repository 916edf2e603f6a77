DROP TABLE IF EXISTS chat.message_event;
ALTER TABLE chat.message DROP COLUMN IF EXISTS deleted_at;
ALTER TABLE chat.message DROP COLUMN IF EXISTS edited_at;
