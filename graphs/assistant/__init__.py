"""The assistant graph: classify → retrieve | code_execute → recall → synthesize."""
