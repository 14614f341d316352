"""The training stages, each a self-contained module read top to bottom:
tokenizer -> data -> model + adapter -> trainer -> train -> save."""

from engine.stages import dpo, sft

STAGES = {"sft": sft.run, "dpo": dpo.run}
