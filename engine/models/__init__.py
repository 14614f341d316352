"""Models: the local store, the one loader (every from_pretrained), fetching SmolLM2, tiny test models
and export."""
