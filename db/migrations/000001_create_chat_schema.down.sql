DROP TABLE IF EXISTS chat.block;
DROP TABLE IF EXISTS chat.receipt;
DROP TABLE IF EXISTS chat.message;
DROP TABLE IF EXISTS chat.participant;
DROP TABLE IF EXISTS chat.conversation;
DROP SCHEMA IF EXISTS chat;
