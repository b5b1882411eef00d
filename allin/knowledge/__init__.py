"""Knowledge ingestion: files → typed chunks → vectors.

`filetypes` sniffs what a file really is, `extract` turns it into an
`ExtractedDocument` of chunks (PDF text/tables/images, Markdown, HTML, DOCX,
plain text, source code), `ocr` reads pixels, `chunk` cuts passages to the
embedding model's window, `embeddings` turns passages into vectors, and
`pipeline` ties them together for one file or a stream of files. Everything
here is synchronous CPU work: async callers run it in a worker thread.
"""
