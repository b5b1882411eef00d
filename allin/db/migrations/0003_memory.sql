-- Long-term memory (allin.memory, on mem0 2.2.x).
--
-- `memories` is mem0's pgvector collection, created here rather than by mem0 at first use so
-- its dimension follows the settings like every other vector column and its indexes exist
-- before any replica writes. The columns are exactly what mem0's PGVector store reads and
-- writes (id, vector, payload); the payload holds the text (`data`), `user_id`, `hash`,
-- `created_at`/`updated_at` (ISO strings) and our `turn_id`. mem0 skips creating a table
-- that already exists.
CREATE TABLE memories (
    id      uuid PRIMARY KEY,
    vector  vector({embedding_dim}),
    payload jsonb
);
-- The same index names mem0 would use, so its CREATE INDEX IF NOT EXISTS finds them.
CREATE INDEX memories_hnsw_idx ON memories USING hnsw (vector vector_cosine_ops);
CREATE INDEX memories_text_lemmatized_idx ON memories USING gin (to_tsvector('simple', payload->>'text_lemmatized'));
-- Every query on memories is per user (list, delete, search filters).
CREATE INDEX memories_user ON memories ((payload->>'user_id'), (payload->>'created_at'));

-- User turns whose memory work was done (or is being done): a resumed or retried turn
-- writes its memories once. `pending` rows older than a few minutes are a crashed
-- attempt and may be claimed again.
CREATE TABLE memory_turns (
    turn_id     text PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
    memory_ids  uuid[] NOT NULL DEFAULT '{}',
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);

-- mem0's rows carry the user only inside the payload: remove them with the user, as the
-- foreign keys do for chats and turns.
CREATE FUNCTION memories_forget_user() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM memories WHERE payload->>'user_id' = OLD.id::text;
    RETURN OLD;
END
$$;
CREATE TRIGGER users_forget_memories AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION memories_forget_user();
