-- "Conversations of a user": the primary key leads with conversation_id, so it cannot serve this.
CREATE INDEX participant_user_idx ON chat.participant (user_id, conversation_id);
