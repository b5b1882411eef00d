-- Gemini context caches (files mode): one per (model, system prompt, attached files), shared by replicas.
CREATE TABLE IF NOT EXISTS gemini_caches (
    key         text PRIMARY KEY,
    name        text NOT NULL,
    model       text NOT NULL,
    tokens      int NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
