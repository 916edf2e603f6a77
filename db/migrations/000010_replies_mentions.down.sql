DROP TABLE IF EXISTS chat.message_mention;
DROP INDEX IF EXISTS chat.message_thread_idx;
ALTER TABLE chat.message DROP COLUMN IF EXISTS mentioned_user_ids;
ALTER TABLE chat.message DROP COLUMN IF EXISTS last_reply_at;
ALTER TABLE chat.message DROP COLUMN IF EXISTS reply_count;
ALTER TABLE chat.message DROP COLUMN IF EXISTS parent_id;
