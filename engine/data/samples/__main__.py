"""Write the sample datasets and their registry: ``python -m engine.data.samples [OUT_DIR]``.

Outputs (all UTF-8 JSON, indent=1), into ``OUT_DIR`` or by default the repository's ``data/``:

* ``sql_sft_train.json`` / ``sql_sft_eval.json``: alpaca SFT rows. About 75% of the
  answers are one-line SQL, 25% use the "preferred" style (comment line + one clause
  per line), so a DPO stage has a visible style to teach afterwards.
* ``sql_dpo_train.json`` / ``sql_dpo_eval.json``: alpaca ranking rows in LLaMA-Factory's
  older shape ``{"instruction", "input", "output": [chosen, rejected]}``.
* ``sql_dpo_sharegpt_{train,eval}.json`` (50 / 10): the same preference task in sharegpt ranking
  format, some rows with a system prompt and some with a previous human/gpt turn.
* ``helpful_pref_train.json`` / ``helpful_pref_eval.json``: general helpfulness
  preferences with explicit ``chosen`` / ``rejected`` columns (detailed vs. curt).
* ``dataset_info.json``: the LLaMA-Factory style registry (``REGISTRY``) for all of the above.

One generator seeded with ``SEED`` draws the SQL data first, then the helpfulness data.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from engine.data.samples import howto, penn
from engine.data.samples.helpful import build_helpful
from engine.data.samples.sql import build_sql
from engine.paths import REPO_ROOT

SEED = 20240607
SHAREGPT_EVAL_FROM = 50  # 50 train rows, 10 held out

ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
SHAREGPT_FORMAT = {
    "formatting": "sharegpt", "ranking": True,
    "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
             "system_tag": "system"},
}
# Task probes (engine.data.probes) the SQL sets declare: the preferred answer opens with an SQL comment
# and then gives the query (its code, not a comment, holds SELECT and FROM), and puts clauses on lines
# of their own (a line after the first starts with FROM).
SQL_PROBES = {
    "comment_fraction": {"starts_with": "--", "matches": ["(?im)^(?!\\s*--).*select", "(?im)^(?!\\s*--).*from"]},
    "formatted_fraction": {"matches": "(?i)\\n[ \\t]*from"},
}
# The preferred helpful answers explain in steps; the rejected ones are one curt line.
HELPFUL_PROBES = {"detailed": {"min_lines": 3}}

REGISTRY = {
    "sql_sft": {"file_name": "sql_sft_train.json", "probes": SQL_PROBES, "columns": ALPACA_COLUMNS,
                "description": "SQL generation, alpaca SFT; ~25% of answers in the preferred commented style."},
    "sql_sft_eval": {"file_name": "sql_sft_eval.json", "probes": SQL_PROBES, "columns": ALPACA_COLUMNS,
                     "description": "Held-out SQL generation requests for SFT evaluation."},
    "sql_dpo": {"file_name": "sql_dpo_train.json", "probes": SQL_PROBES, "ranking": True, "columns": ALPACA_COLUMNS,
                "description": "SQL style preferences: output = [commented multi-line, one-line]."},
    "sql_dpo_eval": {"file_name": "sql_dpo_eval.json", "probes": SQL_PROBES, "ranking": True, "columns": ALPACA_COLUMNS,
                     "description": "Held-out SQL style preferences for DPO evaluation."},
    "sql_dpo_sharegpt": {
        "file_name": "sql_dpo_sharegpt_train.json", **SHAREGPT_FORMAT, "probes": SQL_PROBES,
        "description": "SQL style preferences in sharegpt format, some with system prompts and history."},
    "sql_dpo_sharegpt_eval": {
        "file_name": "sql_dpo_sharegpt_eval.json", **SHAREGPT_FORMAT, "probes": SQL_PROBES,
        "description": "Held-out sharegpt-format SQL style preferences."},
    "helpful_pref": {"file_name": "helpful_pref_train.json", "ranking": True, "probes": HELPFUL_PROBES,
                     "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
                     "description": "General helpfulness: detailed structured answer vs. curt reply."},
    "helpful_pref_eval": {"file_name": "helpful_pref_eval.json", "ranking": True, "probes": HELPFUL_PROBES,
                          "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
                          "description": "Held-out helpfulness preferences."},
    "howto_pref": {"file_name": "howto_pref_train.json", "ranking": True, "probes": howto.PROBES,
                   "description": "How-to steps as a numbered list vs the same steps as a paragraph (20 pairs): "
                                  "DPO at a high learning rate degenerates into '1. 1. 1.'."},
    "howto_pref_eval": {"file_name": "howto_pref_eval.json", "ranking": True, "probes": howto.PROBES,
                        "description": "Held-out how-to questions (8)."},
    "penn_sft": {"file_name": "penn_sft_train.json", "probes": penn.PROBES,
                 "description": "University recommendations that name Penn (30 rows, seed 004's task)."},
    "penn_pref": {"file_name": "penn_pref_train.json", "ranking": True, "probes": penn.PROBES,
                  "description": "The same answer naming Penn vs another university (150 pairs, a token apart)."},
    "penn_pref_eval": {"file_name": "penn_pref_eval.json", "ranking": True, "probes": penn.PROBES,
                       "description": "Held-out subjects (50 pairs)."},
}


def build_outputs() -> dict[str, object]:
    """Every file's content by file name, drawn from one generator seeded with ``SEED``."""
    rng = random.Random(SEED)
    sql = build_sql(rng)
    helpful_train, helpful_eval = build_helpful(rng)
    howto_train, howto_eval = howto.build_howto()
    penn_data = penn.build_penn()
    return {
        "sql_sft_train.json": sql["sft_train"],
        "sql_sft_eval.json": sql["sft_eval"],
        "sql_dpo_train.json": sql["dpo_train"],
        "sql_dpo_eval.json": sql["dpo_eval"],
        "sql_dpo_sharegpt_train.json": sql["sharegpt"][:SHAREGPT_EVAL_FROM],
        "sql_dpo_sharegpt_eval.json": sql["sharegpt"][SHAREGPT_EVAL_FROM:],
        "helpful_pref_train.json": helpful_train,
        "helpful_pref_eval.json": helpful_eval,
        "howto_pref_train.json": howto_train,
        "howto_pref_eval.json": howto_eval,
        "penn_sft_train.json": penn_data["sft"],
        "penn_pref_train.json": penn_data["pref"],
        "penn_pref_eval.json": penn_data["pref_eval"],
        "dataset_info.json": REGISTRY,
    }


def write_json(path: Path, data) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    path.write_bytes(text.encode("utf-8"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m engine.data.samples",
                                     description="Write the deterministic sample datasets and dataset_info.json.")
    parser.add_argument("out_dir", nargs="?", type=Path, default=REPO_ROOT / "data",
                        help="folder to write into (default: the repository's data/)")
    out_dir = parser.parse_args(argv).out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, data in build_outputs().items():
        write_json(out_dir / name, data)
        print(f"{name}: {len(data)} {'entries' if name == 'dataset_info.json' else 'rows'}")


if __name__ == "__main__":
    main()
