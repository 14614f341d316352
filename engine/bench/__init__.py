"""`workbench bench {dpo,sft,chat}`: the workbench against TRL (and chat against plain ``generate``)
on identical tokens, each measured run in a fresh process.

    recipe.py    the settings both systems share (model, template, data, LoRA, batch, steps, ...)
    measure.py   what a run is measured by: real tokens, step times, reference precompute, memory
    training.py  the two trainers, built on the recipe: the workbench's stage and TRL's own trainer
    chat.py      side-by-side chat (engine.inference.chat) against plain model.generate
    worker.py    `python -m engine.bench.worker SPEC OUT`: one measured run in its own process
    machine.py   what the numbers were measured on
    harness.py   the plan: which systems, alternated how often, in which processes
    report.py    medians, ratios, the table and the JSON line
    cli.py       the `workbench bench` subcommand
"""
