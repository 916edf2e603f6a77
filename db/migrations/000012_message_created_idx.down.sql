DROP INDEX IF EXISTS chat.message_created_idx;
