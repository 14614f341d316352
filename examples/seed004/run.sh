#!/usr/bin/env bash
# Seed 004 reproduced on SmolLM2: SFT on the Penn answers, then DPO and DPOP from that SFT run with
# identical settings, one evaluation of all four models on the 50 held-out prompts, and the curves.
#   bash examples/seed004/run.sh        (after `make model`; about 20 minutes on 2 CPU cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
WB="${WB:-.venv/bin/workbench}"
PY="${PY:-.venv/bin/python}"
HERE=examples/seed004

# `workbench train` prints "run folder: PATH" first; the progress goes on to stderr (-a: a log file
# that stderr is redirected to is appended to, not truncated).
train() { "$WB" train "$@" | tee -a /dev/stderr | sed -n 's/^run folder: //p'; }

SFT=$(train "$HERE/sft.yaml")
DPO=$(train "$HERE/dpo.yaml" --set "init_from=$SFT")
DPOP=$(train "$HERE/dpop.yaml" --set "init_from=$SFT")

# Alignment accuracy: the share of held-out answers that mention Penn (the probe penn_pref_eval
# declares in data/dataset_info.json) and raise no degeneration alarm.
"$WB" eval "$DPOP" --dataset penn_pref_eval --prompts 50 --max-new-tokens 64 \
    --compare "base,sft=$SFT,dpo=$DPO,dpop=$DPOP"
"$PY" "$HERE/plot.py" "$DPO" "$DPOP" "$HERE/rewards.png"
