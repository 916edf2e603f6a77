ALTER TABLE chat.conversation DROP COLUMN IF EXISTS member_version;
