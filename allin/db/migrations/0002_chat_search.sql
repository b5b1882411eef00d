-- Chat history search (allin.chats.search).
--
-- Semantic search over turns is always scoped to one user. A single HNSW index over every
-- user's turns serves that badly: the user filter is applied after the index scan, so a user
-- who owns 5% of the rows costs 20x the work (measured: ~10 ms of server CPU per query at
-- 100k turns, recall@30 0.90). Instead each turn also keeps its binary-quantised embedding
-- (1 bit per dimension, 48 bytes at 384-d) in a small per-user covering index: a query reads
-- only its user's entries (index-only), ranks them by Hamming distance, and reranks a
-- shortlist by exact cosine distance (measured: ~2.7 ms, recall@30 0.99).
ALTER TABLE chat_turns ADD COLUMN embedding_bits bit varying;

-- Kept in step with `embedding` by whoever writes it (COPY, re-embedding, forks), whatever the dimension.
CREATE FUNCTION chat_turns_quantize() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.embedding_bits := CASE WHEN NEW.embedding IS NULL THEN NULL ELSE binary_quantize(NEW.embedding) END;
    RETURN NEW;
END
$$;
CREATE TRIGGER chat_turns_quantize BEFORE INSERT OR UPDATE OF embedding ON chat_turns
    FOR EACH ROW EXECUTE FUNCTION chat_turns_quantize();

CREATE INDEX chat_turns_user_bits ON chat_turns (user_id) INCLUDE (id, embedding_bits)
    WHERE embedding_bits IS NOT NULL;

-- Nothing searches turns through the all-users HNSW index any more; it only slowed every write.
DROP INDEX chat_turns_embedding;

-- Turns still waiting for an embedding, found without scanning a user's history.
CREATE INDEX chat_turns_unembedded ON chat_turns (user_id, seq) WHERE embedding IS NULL;
