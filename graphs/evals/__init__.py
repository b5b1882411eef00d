"""Evaluation: run a JSONL dataset through the real assistant graph and score what it did.

`dataset` reads and checks the cases, `ingest` puts the documents a dataset
needs into the knowledge base, `engine` runs every case as a real turn
(TurnRunner over the Postgres checkpointer) and keeps a local trace of it,
`metrics` scores one case, `report` sums up and renders, and `experiment`
records the run as a LangSmith experiment when asked to.
"""
