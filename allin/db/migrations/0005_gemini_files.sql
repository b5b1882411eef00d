-- Gemini Files API copies of documents (retrieval_mode=files). 0001 already has the file's
-- name, uri, sha256 and expiry; the mime type it was uploaded as is needed to reference it.
ALTER TABLE documents ADD COLUMN IF NOT EXISTS gemini_file_name text;
ALTER TABLE documents ADD COLUMN IF NOT EXISTS gemini_file_uri text;
ALTER TABLE documents ADD COLUMN IF NOT EXISTS gemini_file_sha256 text;
ALTER TABLE documents ADD COLUMN IF NOT EXISTS gemini_expires_at timestamptz;
ALTER TABLE documents ADD COLUMN IF NOT EXISTS gemini_file_mime text;
