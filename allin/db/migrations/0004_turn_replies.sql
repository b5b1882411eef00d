-- Finding user turns left without an answer (a process died mid-turn) looks replies up by reply_to.
CREATE INDEX IF NOT EXISTS chat_turns_reply_to ON chat_turns (reply_to);
