"""The training stages, each a self-contained module read top to bottom:
tokenizer -> data -> model + adapter -> trainer -> train -> save."""

from engine.stages import dpo, ppo, rm, sft

STAGES = {"sft": sft.run, "rm": rm.run, "ppo": ppo.run, "dpo": dpo.run}
