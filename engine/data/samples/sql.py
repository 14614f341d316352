"""The SQL sample datasets: the weighted template pool and ``build_sql``, which splits it.

``sql_pool`` draws unique requests from the weighted ``TEMPLATES`` (unique by SQL text and by
request text); ``build_sql`` shuffles the pool and cuts it into disjoint SFT, DPO and sharegpt
parts, so an evaluation request never occurs in a training file. SFT rows answer in the plain
one-line style, about 25% in the preferred commented style; DPO rows pair the two styles as
``[chosen, rejected]``; sharegpt rows add system prompts and previous turns to some
conversations.
"""

from __future__ import annotations

import random

from engine.data.samples.sql_joins import (
    j_employees_departments,
    j_enrollments,
    j_invoices_customers,
    j_orders_products,
    j_orders_users,
)
from engine.data.samples.sql_schema import one_line, pretty, schema_text
from engine.data.samples.sql_templates import (
    cat_cond,
    date_cond,
    like_cond,
    num_cond,
    t_agg_filter,
    t_agg_group,
    t_between,
    t_count_filter,
    t_count_group,
    t_distinct,
    t_filter,
    t_filter_both,
    t_recent,
    t_top_n,
)

SFT_TRAIN, SFT_EVAL = 300, 40
DPO_TRAIN, DPO_EVAL = 300, 50
SHAREGPT = 60

# (weight, template): how often each kind of request is drawn
TEMPLATES = [
    (3, lambda rng: t_filter(rng, num_cond)),
    (2, lambda rng: t_filter(rng, cat_cond)),
    (2, lambda rng: t_filter(rng, like_cond)),
    (1, lambda rng: t_filter(rng, date_cond)),
    (2, t_filter_both),
    (2, t_top_n),
    (1, t_recent),
    (2, t_count_group),
    (3, t_agg_group),
    (1, t_agg_filter),
    (2, t_count_filter),
    (1, t_distinct),
    (2, t_between),
    (1, j_orders_users),
    (1, j_orders_products),
    (1, j_employees_departments),
    (1, j_invoices_customers),
    (1, j_enrollments),
]


def sql_pool(rng: random.Random, size: int) -> list[dict]:
    """Draw unique requests: unique by SQL text *and* by request text, so splits never share a query."""
    weights = [w for w, _ in TEMPLATES]
    funcs = [f for _, f in TEMPLATES]
    pool, seen_sql, seen_req = [], set(), set()
    attempts = 0
    while len(pool) < size:
        attempts += 1
        if attempts > size * 200:
            raise RuntimeError(f"templates only produced {len(pool)} unique requests")
        made = rng.choices(funcs, weights)[0](rng)
        if made is None:
            continue
        tables, request, comment, q = made
        sql = one_line(q)
        if sql in seen_sql or request in seen_req:
            continue
        seen_sql.add(sql)
        seen_req.add(request)
        pool.append({"tables": tables, "request": request, "plain": sql, "pretty": pretty(q, comment)})
    return pool


INSTRUCTIONS = ["Write a SQL query for this request.", "Translate the request into SQL.",
                "Write an SQL query that answers the request below.", "Convert this request to a SQL query."]


def prompt_fields(rng: random.Random, item: dict) -> tuple[str, str]:
    """Mix the two alpaca layouts: instruction + input, or everything in the instruction."""
    schema = schema_text(item["tables"])
    request = item["request"]
    if rng.random() < 0.6:
        return rng.choice(INSTRUCTIONS), f"{schema} {request}"
    inline = ("the table " if len(item["tables"]) == 1 else "the tables ") + schema.split(" ", 1)[1].rstrip(".")
    return rng.choice([
        f"Write a SQL query. {schema} {request}",
        f"{schema} Write a SQL query to answer: {request}",
        f"Using {inline}, write a SQL query for this request: {request}",
    ]), ""


def build_sql(rng: random.Random) -> dict[str, list]:
    pool = sql_pool(rng, SFT_EVAL + DPO_EVAL + SFT_TRAIN + DPO_TRAIN + SHAREGPT)
    rng.shuffle(pool)
    cuts = {}
    start = 0
    for key, n in [("sft_eval", SFT_EVAL), ("dpo_eval", DPO_EVAL), ("sft_train", SFT_TRAIN),
                   ("dpo_train", DPO_TRAIN), ("sharegpt", SHAREGPT)]:
        cuts[key] = pool[start:start + n]
        start += n

    out: dict[str, list] = {}
    for key in ("sft_train", "sft_eval"):
        items = cuts[key]
        preferred = set(rng.sample(range(len(items)), round(len(items) * 0.25)))
        rows = []
        for i, item in enumerate(items):
            instruction, inp = prompt_fields(rng, item)
            rows.append({"instruction": instruction, "input": inp,
                         "output": item["pretty"] if i in preferred else item["plain"]})
        out[key] = rows
    for key in ("dpo_train", "dpo_eval"):
        rows = []
        for item in cuts[key]:
            instruction, inp = prompt_fields(rng, item)
            rows.append({"instruction": instruction, "input": inp, "output": [item["pretty"], item["plain"]]})
        out[key] = rows

    # sharegpt: some rows get a system prompt, some a previous turn on the same tables.
    by_tables: dict[tuple, list] = {}
    for item in cuts["dpo_train"]:
        by_tables.setdefault(tuple(item["tables"]), []).append(item)
    systems = ["You are a helpful assistant that writes SQL queries for the user's database.",
               "You are an expert data analyst. Answer questions with SQL."]
    rows = []
    for i, item in enumerate(cuts["sharegpt"]):
        conv = []
        if i % 5 in (0, 3):
            conv.append({"from": "system", "value": systems[i % 2]})
        schema = schema_text(item["tables"])
        priors = by_tables.get(tuple(item["tables"]), [])
        if i % 3 == 1 and priors:
            prior = rng.choice(priors)
            same = "the same table" if len(item["tables"]) == 1 else "the same tables"
            req = item["request"]
            conv += [{"from": "human", "value": f"{schema} {prior['request']}"},
                     {"from": "gpt", "value": prior["pretty"]},
                     {"from": "human", "value": f"Using {same}: {req[0].lower()}{req[1:]}"}]
        else:
            conv.append({"from": "human", "value": f"{schema} {item['request']}"})
        rows.append({"conversations": conv, "chosen": {"from": "gpt", "value": item["pretty"]},
                     "rejected": {"from": "gpt", "value": item["plain"]}})
    out["sharegpt"] = rows
    return out
