DROP TABLE IF EXISTS chat.presence;
DROP TABLE IF EXISTS chat.presence_process;
