-- Allin's schema. `{embedding_dim}` is filled in from settings by the migration runner;
-- a later change of embedding model re-types the columns and re-embeds (allin.knowledge.embeddings).
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE meta (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
    role       text NOT NULL CHECK (role IN ('admin', 'user')),
    token_hash text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    rotated_at timestamptz,
    revoked_at timestamptz
);

CREATE TABLE chats (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    title       text NOT NULL DEFAULT 'New chat',
    title_auto  boolean NOT NULL DEFAULT true,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ended')),
    settings    jsonb NOT NULL DEFAULT '{}',
    topics      text[] NOT NULL DEFAULT '{}',
    forked_from jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chats_user_recent ON chats (user_id, updated_at DESC, id DESC);

CREATE TABLE chat_turns (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    chat_id        uuid NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    user_id        uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    role           text NOT NULL CHECK (role IN ('user', 'assistant')),
    content        text NOT NULL,
    modality       text NOT NULL DEFAULT 'text' CHECK (modality IN ('text', 'voice')),
    status         text NOT NULL DEFAULT 'complete'
                   CHECK (status IN ('pending', 'complete', 'interrupted', 'error')),
    reply_to       uuid REFERENCES chat_turns(id) ON DELETE SET NULL,
    client_id      text,
    audio_ref      text,
    citations      jsonb NOT NULL DEFAULT '[]',
    code           jsonb,
    attachments    jsonb NOT NULL DEFAULT '[]',
    route          text,
    prompt_version int,
    error          text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    embedding      vector({embedding_dim}),
    tsv            tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);
CREATE INDEX chat_turns_chat ON chat_turns (chat_id, seq);
CREATE INDEX chat_turns_user ON chat_turns (user_id, seq DESC);
CREATE INDEX chat_turns_tsv ON chat_turns USING gin (tsv);
CREATE INDEX chat_turns_embedding ON chat_turns USING hnsw (embedding vector_cosine_ops);
-- One user turn per client message id and chat: a retried send does not duplicate it.
CREATE UNIQUE INDEX chat_turns_client_id ON chat_turns (chat_id, client_id) WHERE client_id IS NOT NULL AND role = 'user';

CREATE TABLE chat_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    chat_id    uuid NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind       text NOT NULL,
    details    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_events_chat ON chat_events (chat_id, id);

CREATE TABLE feedback (
    turn_id    uuid PRIMARY KEY REFERENCES chat_turns(id) ON DELETE CASCADE,
    user_id    uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rating     smallint NOT NULL CHECK (rating IN (-1, 1)),
    comment    text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE attachments (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    chat_id     uuid REFERENCES chats(id) ON DELETE CASCADE,
    filename    text NOT NULL,
    mime        text NOT NULL,
    size_bytes  bigint NOT NULL,
    storage_key text NOT NULL,
    text        text,
    status      text NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'error')),
    error       text,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    path              text NOT NULL UNIQUE,
    title             text NOT NULL,
    sha256            text,
    mime              text,
    size_bytes        bigint,
    pages             int,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'processing', 'ready', 'error')),
    error             text,
    chunk_count       int NOT NULL DEFAULT 0,
    allowed_users     uuid[],          -- NULL: the whole team may see it
    summary           text,
    summary_embedding vector({embedding_dim}),
    embedding_model   text,
    gemini_file_name  text,
    gemini_file_uri   text,
    gemini_file_sha256 text,
    gemini_expires_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    ingested_at       timestamptz
);

CREATE TABLE chunks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    document_id uuid NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord         int NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('text', 'table', 'image', 'code')),
    page        int,
    section     text,
    line_start  int,
    line_end    int,
    content     text NOT NULL,
    embedding   vector({embedding_dim}),
    tsv         tsvector GENERATED ALWAYS AS
                (setweight(to_tsvector('english', coalesce(section, '')), 'A') ||
                 setweight(to_tsvector('english', content), 'B')) STORED
);
CREATE INDEX chunks_document ON chunks (document_id, ord);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops);

CREATE TABLE prompts (
    version    int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL DEFAULT 'system',
    text       text NOT NULL,
    note       text,
    author_id  uuid REFERENCES users(id) ON DELETE SET NULL,
    active     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX prompts_one_active ON prompts (name) WHERE active;

CREATE TABLE jobs (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    kind        text NOT NULL,
    status      text NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed')),
    params      jsonb NOT NULL DEFAULT '{}',
    progress    jsonb NOT NULL DEFAULT '{}',
    results     jsonb NOT NULL DEFAULT '[]',
    error       text,
    created_by  uuid REFERENCES users(id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    started_at  timestamptz,
    finished_at timestamptz,
    heartbeat_at timestamptz
);
-- At most one sync runs at a time across all replicas.
CREATE UNIQUE INDEX jobs_one_running ON jobs (kind) WHERE status IN ('queued', 'running');
