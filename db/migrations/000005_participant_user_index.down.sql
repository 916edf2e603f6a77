DROP INDEX IF EXISTS chat.participant_user_idx;
