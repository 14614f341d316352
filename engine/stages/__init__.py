"""The training stages, each a self-contained module read top to bottom:
tokenizer -> data -> model + adapter -> trainer -> train -> save.

Nothing is imported here: engine.train imports the one module a run needs, and the callbacks
and shared helpers can be imported without pulling in every trainer."""
