DROP INDEX IF EXISTS chat.message_dedupe_key;
