#!/usr/bin/env python3
"""Generate the small, deterministic sample datasets shipped in this folder.

Run ``python data/make_samples.py``. Pure standard library, one fixed seed: running it
again rewrites byte-for-byte identical files, so the shipped data can always be
regenerated and reviewed as code instead of as opaque JSON.

Outputs (all UTF-8 JSON lists, indent=1), next to this script:

* ``sql_sft_train.json`` / ``sql_sft_eval.json``: alpaca SFT rows. About 75% of the
  answers are one-line SQL, 25% use the "preferred" style (comment line + one clause
  per line), so a DPO stage has a visible style to teach afterwards.
* ``sql_dpo_train.json`` / ``sql_dpo_eval.json``: alpaca ranking rows in LLaMA-Factory's
  older shape ``{"instruction", "input", "output": [chosen, rejected]}``.
* ``sql_dpo_sharegpt_{train,eval}.json`` (50 / 10): the same preference task in sharegpt ranking format, some
  rows with a system prompt and some with a previous human/gpt turn.
* ``helpful_pref_train.json`` / ``helpful_pref_eval.json``: general helpfulness
  preferences with explicit ``chosen`` / ``rejected`` columns (detailed vs. curt).
* ``dataset_info.json``: the LLaMA-Factory style registry for all of the above.

Held-out guarantee: every SQL query (and request text) appears in exactly one split,
so evaluation requests never occur in a training file.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240607

SFT_TRAIN, SFT_EVAL = 300, 40
DPO_TRAIN, DPO_EVAL = 300, 50
SHAREGPT = 60
HELPFUL_TRAIN, HELPFUL_EVAL = 150, 30

# --------------------------------------------------------------------------------------
# SQL schema metadata: columns, English phrases and plausible values per table.
# --------------------------------------------------------------------------------------

TABLES: dict[str, dict] = {
    "users": {
        "columns": ["id", "name", "email", "age", "city", "signup_date"],
        "singular": "user",
        "show": ["name", "email", "age", "city"],
        "nums": {
            "age": {
                "label": "age",
                "ops": {">": "older than {v}", "<": "younger than {v}", ">=": "aged {v} or older"},
                "values": [18, 21, 25, 30, 35, 40, 45, 50, 60, 65],
                "aggs": ["AVG", "MAX", "MIN"],
                "superlative": ("oldest", "youngest"),
            },
        },
        "cat": {"col": "city", "label": "city", "plural": "cities", "phrase": "in {v}",
                "values": ["Paris", "Berlin", "Madrid", "Tokyo", "Toronto", "Lagos", "Chicago", "Sydney"]},
        "likes": [("name", "starts", v) for v in "ABCJKMS"]
        + [("email", "ends", v) for v in ("@gmail.com", "@example.org", "@yahoo.com")],
        "date": {"col": "signup_date", "verb": "who signed up"},
    },
    "orders": {
        "columns": ["id", "user_id", "product_id", "quantity", "amount", "status", "order_date"],
        "singular": "order",
        "show": ["id", "user_id", "quantity", "amount", "order_date"],
        "nums": {
            "amount": {
                "label": "amount",
                "ops": {">": "with an amount above {v}", "<": "with an amount below {v}"},
                "values": [20, 50, 100, 200, 250, 500, 1000],
                "aggs": ["SUM", "AVG", "MAX"],
            },
            "quantity": {
                "label": "quantity",
                "ops": {">": "with a quantity above {v}", ">=": "with a quantity of at least {v}"},
                "values": [1, 2, 3, 5, 10],
                "aggs": ["SUM", "AVG"],
            },
        },
        "cat": {"col": "status", "label": "status", "plural": "statuses", "phrase": "with status '{v}'",
                "values": ["pending", "shipped", "delivered", "cancelled", "returned"]},
        "likes": [],
        "date": {"col": "order_date", "verb": "placed"},
    },
    "products": {
        "columns": ["id", "name", "category", "price", "stock"],
        "singular": "product",
        "show": ["name", "category", "price", "stock"],
        "nums": {
            "price": {
                "label": "price",
                "ops": {">": "priced above {v}", "<": "priced below {v}"},
                "values": [5, 10, 20, 25, 50, 100, 200, 500],
                "aggs": ["AVG", "MAX", "MIN"],
                "superlative": ("most expensive", "cheapest"),
            },
            "stock": {
                "label": "stock",
                "ops": {"<": "with fewer than {v} units in stock", ">": "with more than {v} units in stock"},
                "values": [5, 10, 20, 50, 100],
                "aggs": ["SUM", "MIN", "AVG"],
            },
        },
        "cat": {"col": "category", "label": "category", "plural": "categories",
                "phrase": "in the {v} category",
                "values": ["electronics", "books", "toys", "garden", "clothing", "kitchen", "sports"]},
        "likes": [("name", "contains", v) for v in ("Pro", "Mini", "Max", "Smart", "Eco")],
        "date": None,
    },
    "employees": {
        "columns": ["id", "name", "department_id", "title", "salary", "hire_date"],
        "singular": "employee",
        "show": ["name", "title", "salary", "hire_date"],
        "nums": {
            "salary": {
                "label": "salary",
                "ops": {">": "earning more than {v}", "<": "earning less than {v}", ">=": "earning at least {v}"},
                "values": [40000, 50000, 60000, 75000, 90000, 100000, 120000],
                "aggs": ["AVG", "MAX", "MIN", "SUM"],
                "superlative": ("highest-paid", "lowest-paid"),
            },
        },
        "cat": {"col": "title", "label": "job title", "plural": "job titles",
                "phrase": "with the job title {v}",
                "values": ["Engineer", "Analyst", "Manager", "Designer", "Accountant", "Recruiter"]},
        "likes": [("name", "starts", v) for v in "ADEHLRT"],
        "date": {"col": "hire_date", "verb": "hired"},
    },
    "departments": {
        "columns": ["id", "name", "location", "budget"],
        "singular": "department",
        "show": ["name", "location", "budget"],
        "nums": {
            "budget": {
                "label": "budget",
                "ops": {">": "with a budget over {v}", "<": "with a budget under {v}"},
                "values": [50000, 100000, 250000, 500000, 1000000],
                "aggs": ["SUM", "AVG", "MAX"],
            },
        },
        "cat": {"col": "location", "label": "location", "plural": "locations", "phrase": "located in {v}",
                "values": ["London", "New York", "Singapore", "Austin", "Dublin"]},
        "likes": [("name", "contains", v) for v in ("Sales", "Research", "Support")],
        "date": None,
    },
    "customers": {
        "columns": ["id", "name", "email", "country", "credit_limit", "joined_on"],
        "singular": "customer",
        "show": ["name", "email", "country", "credit_limit"],
        "nums": {
            "credit_limit": {
                "label": "credit limit",
                "ops": {">": "with a credit limit above {v}", "<": "with a credit limit below {v}"},
                "values": [500, 1000, 2500, 5000, 10000],
                "aggs": ["AVG", "MAX", "SUM"],
            },
        },
        "cat": {"col": "country", "label": "country", "plural": "countries", "phrase": "from {v}",
                "values": ["France", "Germany", "Japan", "Brazil", "Canada", "India", "Kenya", "Mexico"]},
        "likes": [("name", "starts", v) for v in "BFGNPW"]
        + [("email", "ends", v) for v in ("@gmail.com", "@outlook.com", "@example.com")],
        "date": {"col": "joined_on", "verb": "who joined"},
    },
    "invoices": {
        "columns": ["id", "customer_id", "amount", "status", "issued_on"],
        "singular": "invoice",
        "show": ["id", "customer_id", "amount", "issued_on"],
        "nums": {
            "amount": {
                "label": "amount",
                "ops": {">": "with an amount over {v}", "<": "with an amount under {v}"},
                "values": [100, 250, 500, 1000, 2000, 5000],
                "aggs": ["SUM", "AVG", "MAX"],
            },
        },
        "cat": {"col": "status", "label": "status", "plural": "statuses", "phrase": "with status '{v}'",
                "values": ["paid", "unpaid", "overdue", "void"]},
        "likes": [],
        "date": {"col": "issued_on", "verb": "issued"},
    },
    "students": {
        "columns": ["id", "name", "major", "gpa", "enrollment_year"],
        "singular": "student",
        "show": ["name", "major", "gpa", "enrollment_year"],
        "nums": {
            "gpa": {
                "label": "GPA",
                "ops": {">": "with a GPA above {v}", "<": "with a GPA below {v}", ">=": "with a GPA of at least {v}"},
                "values": [2.0, 2.5, 3.0, 3.2, 3.5, 3.7, 3.8],
                "aggs": ["AVG", "MAX", "MIN"],
            },
            "enrollment_year": {
                "label": "enrollment year",
                "ops": {">": "who enrolled after {v}", "<": "who enrolled before {v}"},
                "values": [2018, 2019, 2020, 2021, 2022, 2023],
                "aggs": [],
            },
        },
        "cat": {"col": "major", "label": "major", "plural": "majors", "phrase": "majoring in {v}",
                "values": ["Biology", "History", "Physics", "Economics", "Mathematics", "Chemistry", "Philosophy"]},
        "likes": [("name", "starts", v) for v in "CEILOS"],
        "date": None,
    },
    "courses": {
        "columns": ["id", "title", "department", "credits"],
        "singular": "course",
        "show": ["title", "department", "credits"],
        "nums": {
            "credits": {
                "label": "credits",
                "ops": {">": "worth more than {v} credits", ">=": "worth at least {v} credits",
                        "<": "worth fewer than {v} credits"},
                "values": [2, 3, 4, 5],
                "aggs": ["SUM", "AVG", "MAX"],
            },
        },
        "cat": {"col": "department", "label": "department", "plural": "departments",
                "phrase": "in the {v} department",
                "values": ["Mathematics", "Biology", "History", "Computer Science", "Economics"]},
        "likes": [("title", "contains", v) for v in ("Introduction", "Advanced", "Data", "Theory", "Lab")],
        "date": None,
    },
    "enrollments": {
        "columns": ["id", "student_id", "course_id", "grade"],
        "singular": "enrollment",
    },
}
SINGLE_TABLES = [name for name in TABLES if name != "enrollments"]
VERBS = ["Find", "List", "Show", "Get", "Return", "Retrieve"]
FUNC_WORD = {"AVG": "average", "MAX": "highest", "MIN": "lowest", "SUM": "total"}
FUNC_ALIAS = {"AVG": "avg", "MAX": "max", "MIN": "min", "SUM": "total"}
GRADES = ["A", "B", "C", "D", "F"]
ORDERS_STATUS = TABLES["orders"]["cat"]["values"]
INVOICE_STATUS = TABLES["invoices"]["cat"]["values"]


def label(col: str) -> str:
    return {"id": "ID", "gpa": "GPA", "user_id": "user ID", "customer_id": "customer ID",
            "issued_on": "issue date", "joined_on": "join date"}.get(
        col, col.replace("_", " "))


def and_list(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


def query(select, frm, joins=(), where=(), group=(), having=None, order=(), limit=None, distinct=False):
    """A tiny SQL AST: both answer styles are rendered from it, so they always agree."""
    return {"select": list(select), "from": frm, "joins": list(joins), "where": list(where),
            "group": list(group), "having": having, "order": list(order), "limit": limit,
            "distinct": distinct}


def one_line(q: dict) -> str:
    parts = ["SELECT " + ("DISTINCT " if q["distinct"] else "") + ", ".join(q["select"]),
             "FROM " + " ".join([q["from"], *q["joins"]])]
    if q["where"]:
        parts.append("WHERE " + " AND ".join(q["where"]))
    if q["group"]:
        parts.append("GROUP BY " + ", ".join(q["group"]))
    if q["having"]:
        parts.append("HAVING " + q["having"])
    if q["order"]:
        parts.append("ORDER BY " + ", ".join(q["order"]))
    if q["limit"] is not None:
        parts.append(f"LIMIT {q['limit']}")
    return " ".join(parts) + ";"


def pretty(q: dict, comment: str) -> str:
    """Preferred style: a comment line, then every clause keyword on its own line."""
    ind = "    "

    def listed(items):
        return [ind + item + ("," if i < len(items) - 1 else "") for i, item in enumerate(items)]

    lines = ["-- " + comment, "SELECT DISTINCT" if q["distinct"] else "SELECT", *listed(q["select"]),
             "FROM", ind + q["from"], *[ind + j for j in q["joins"]]]
    if q["where"]:
        lines += ["WHERE", ind + q["where"][0], *[ind + "AND " + w for w in q["where"][1:]]]
    if q["group"]:
        lines += ["GROUP BY", *listed(q["group"])]
    if q["having"]:
        lines += ["HAVING", ind + q["having"]]
    if q["order"]:
        lines += ["ORDER BY", *listed(q["order"])]
    if q["limit"] is not None:
        lines += ["LIMIT", ind + str(q["limit"])]
    return "\n".join(lines) + ";"


def schema_text(tables: list[str]) -> str:
    defs = [f"{t}({', '.join(TABLES[t]['columns'])})" for t in tables]
    return ("Table " if len(defs) == 1 else "Tables ") + and_list(defs) + "."


# --------------------------------------------------------------------------------------
# Request templates. Each returns (tables, request, comment, query).
# --------------------------------------------------------------------------------------


def pick_cols(rng: random.Random, t: dict) -> list[str]:
    k = rng.choice([1, 2, 2, 3])
    chosen = set(rng.sample(t["show"], k))
    return [c for c in t["show"] if c in chosen]


def num_cond(rng, t):
    col = rng.choice(sorted(t["nums"]))
    spec = t["nums"][col]
    op = rng.choice(sorted(spec["ops"]))
    v = rng.choice(spec["values"])
    return spec["ops"][op].format(v=v), f"{col} {op} {v}"


def cat_cond(rng, t):
    c = t["cat"]
    v = rng.choice(c["values"])
    return c["phrase"].format(v=v), f"{c['col']} = '{v}'"


def like_cond(rng, t):
    col, mode, v = rng.choice(t["likes"])
    pattern = {"starts": f"{v}%", "ends": f"%{v}", "contains": f"%{v}%"}[mode]
    words = {"starts": "starts with", "ends": "ends with", "contains": "contains"}[mode]
    return f"whose {label(col)} {words} '{v}'", f"{col} LIKE '{pattern}'"


def date_cond(rng, t):
    d = t["date"]
    year = rng.choice([2019, 2020, 2021, 2022, 2023, 2024])
    kind = rng.choice(["after", "before", "in"])
    if kind == "in":
        return f"{d['verb']} in {year}", f"{d['col']} BETWEEN '{year}-01-01' AND '{year}-12-31'"
    day = f"{year}-{rng.choice([1, 3, 4, 6, 7, 9, 10]):02d}-01"
    return f"{d['verb']} {kind} {day}", f"{d['col']} {'>' if kind == 'after' else '<'} '{day}'"


def any_cond(rng, t):
    makers = [num_cond, num_cond, cat_cond]
    if t["likes"]:
        makers.append(like_cond)
    if t["date"]:
        makers.append(date_cond)
    return rng.choice(makers)(rng, t)


def order_suffix(rng, name, cols):
    """Optional ORDER BY on a numeric column or, when selected, the name/title column."""
    t = TABLES[name]
    if rng.random() < 0.65:
        return "", []
    col = rng.choice(sorted(t["nums"]))
    if rng.random() < 0.5:
        return f", sorted by {t['nums'][col]['label']} from highest to lowest", [f"{col} DESC"]
    text_col = "title" if name == "courses" else "name"
    if text_col in cols:
        return f", sorted by {text_col} alphabetically", [f"{text_col} ASC"]
    return f", sorted by {t['nums'][col]['label']} from lowest to highest", [f"{col} ASC"]


def t_filter(rng, maker):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    if maker is like_cond and not t["likes"] or maker is date_cond and not t["date"]:
        return None
    phrase, cond = maker(rng, t)
    cols = pick_cols(rng, t)
    suffix, order = order_suffix(rng, name, cols)
    desc = f"{and_list([label(c) for c in cols])} of {name} {phrase}{suffix}"
    return [name], f"{rng.choice(VERBS)} the {desc}.", cap(desc), query(cols, name, where=[cond], order=order)


def t_filter_both(rng):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    p1, c1 = num_cond(rng, t)
    p2, c2 = cat_cond(rng, t) if rng.random() < 0.6 or not t["likes"] else like_cond(rng, t)
    cols = pick_cols(rng, t)
    desc = f"{and_list([label(c) for c in cols])} of {name} {p1} {p2}"
    return [name], f"{rng.choice(VERBS)} the {desc}.", cap(desc), query(cols, name, where=[c1, c2])


def t_top_n(rng):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    col = rng.choice(sorted(t["nums"]))
    spec = t["nums"][col]
    n = rng.choice([3, 5, 10])
    high = rng.random() < 0.6
    cols = pick_cols(rng, t)
    where, filt = [], ""
    if rng.random() < 0.35:
        filt, cond = cat_cond(rng, t)
        where, filt = [cond], " " + filt
    if "superlative" in spec:
        who = f"the {n} {spec['superlative'][0 if high else 1]} {name}{filt}"
    else:
        who = f"the {n} {name}{filt} with the {'highest' if high else 'lowest'} {spec['label']}"
    desc = f"{and_list([label(c) for c in cols])} of {who}"
    q = query(cols, name, where=where, order=[f"{col} {'DESC' if high else 'ASC'}"], limit=n)
    return [name], f"{rng.choice(VERBS)} the {desc}.", cap(desc), q


def t_recent(rng):
    name = rng.choice([n for n in SINGLE_TABLES if TABLES[n]["date"]])
    t = TABLES[name]
    n = rng.choice([3, 5, 10, 20])
    recent = rng.random() < 0.7
    cols = pick_cols(rng, t)
    desc = (f"{and_list([label(c) for c in cols])} of the {n} {name} {t['date']['verb']} "
            f"{'most recently' if recent else 'earliest'}")
    q = query(cols, name, order=[f"{t['date']['col']} {'DESC' if recent else 'ASC'}"], limit=n)
    return [name], f"{rng.choice(VERBS)} the {desc}.", cap(desc), q


def t_count_group(rng):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    c = t["cat"]
    alias = f"{t['singular']}_count"
    where, filt = [], ""
    if rng.random() < 0.4:
        filt, cond = num_cond(rng, t) if rng.random() < 0.6 else any_cond(rng, t)
        if cond.startswith(c["col"] + " "):
            return None
        where, filt = [cond], " " + filt
    order, suffix = [], ""
    if rng.random() < 0.4:
        order, suffix = [f"{alias} DESC"], ", from the largest count to the smallest"
    request = rng.choice([f"Count the {name}{filt} in each {c['label']}{suffix}.",
                          f"How many {name}{filt} are there per {c['label']}{suffix}?"])
    comment = f"Number of {name}{filt} per {c['label']}{suffix}"
    q = query([c["col"], f"COUNT(*) AS {alias}"], name, where=where, group=[c["col"]], order=order)
    return [name], request, comment, q


def t_agg_group(rng):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    c = t["cat"]
    col = rng.choice([k for k in sorted(t["nums"]) if t["nums"][k]["aggs"]])
    spec = t["nums"][col]
    fn = rng.choice(spec["aggs"])
    alias = f"{FUNC_ALIAS[fn]}_{col}"
    what = f"{FUNC_WORD[fn]} {spec['label']}"
    mode = rng.choice(["plain", "plain", "sorted", "having"])
    if mode == "having" and fn in ("AVG", "SUM"):
        v = rng.choice(spec["values"])
        article = "an" if fn == "AVG" else "a"
        request = f"Which {c['plural']} have {article} {what} above {v}? Show each {c['label']} with its {what}."
        comment = f"{cap(c['plural'])} where the {what} of {name} is above {v}"
        q = query([c["col"], f"{fn}({col}) AS {alias}"], name, group=[c["col"]], having=f"{fn}({col}) > {v}")
        return [name], request, comment, q
    if mode == "having":
        mode = "plain"
    suffix, order = ("", []) if mode == "plain" else (", highest first", [f"{alias} DESC"])
    request = f"What is the {what} of {name} in each {c['label']}{suffix}?"
    comment = f"{cap(what)} of {name} per {c['label']}{suffix}"
    q = query([c["col"], f"{fn}({col}) AS {alias}"], name, group=[c["col"]], order=order)
    return [name], request, comment, q


def t_agg_filter(rng):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    col = rng.choice([k for k in sorted(t["nums"]) if t["nums"][k]["aggs"]])
    spec = t["nums"][col]
    fn = rng.choice(spec["aggs"])
    phrase, cond = any_cond(rng, t)
    if cond.startswith(col + " "):
        return None
    what = f"{FUNC_WORD[fn]} {spec['label']}"
    q = query([f"{fn}({col}) AS {FUNC_ALIAS[fn]}_{col}"], name, where=[cond])
    return [name], f"What is the {what} of {name} {phrase}?", f"{cap(what)} of {name} {phrase}", q


def t_count_filter(rng):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    phrase, cond = any_cond(rng, t)
    request = rng.choice([f"Count the {name} {phrase}.", f"How many {name} {phrase} are there?"])
    q = query([f"COUNT(*) AS {t['singular']}_count"], name, where=[cond])
    return [name], request, f"Number of {name} {phrase}", q


def t_distinct(rng):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    c = t["cat"]
    phrase, cond = any_cond(rng, t)
    if cond.startswith(c["col"] + " "):
        return None
    alpha = rng.random() < 0.4
    suffix = ", in alphabetical order" if alpha else ""
    request = rng.choice([f"List the distinct {c['plural']} of {name} {phrase}{suffix}.",
                          f"Which {c['plural']} have at least one {t['singular']} {phrase}? "
                          f"List each {c['label']} once{suffix}."])
    q = query([c["col"]], name, where=[cond], order=[f"{c['col']} ASC"] if alpha else [], distinct=True)
    return [name], request, f"Distinct {c['plural']} of {name} {phrase}{suffix}", q


def t_between(rng):
    name = rng.choice(SINGLE_TABLES)
    t = TABLES[name]
    col = rng.choice(sorted(t["nums"]))
    spec = t["nums"][col]
    lo, hi = sorted(rng.sample(spec["values"], 2))
    cols = pick_cols(rng, t)
    suffix, order = order_suffix(rng, name, cols)
    verb = "are" if spec["label"].endswith("s") else "is"
    desc = f"{and_list([label(c) for c in cols])} of {name} whose {spec['label']} {verb} between {lo} and {hi}{suffix}"
    q = query(cols, name, where=[f"{col} BETWEEN {lo} AND {hi}"], order=order)
    return [name], f"{rng.choice(VERBS)} the {desc}.", cap(desc), q


# ---- two-table joins -------------------------------------------------------------------


def j_orders_users(rng):
    tables, frm, join = ["orders", "users"], "orders o", ["JOIN users u ON o.user_id = u.id"]
    kind = rng.choice(["list", "spent", "city", "distinct"])
    if kind == "list":
        f = rng.choice(["status", "city", "amount"])
        if f == "status":
            s = rng.choice(ORDERS_STATUS)
            filt, cond = f" for orders with status '{s}'", f"o.status = '{s}'"
        elif f == "city":
            city = rng.choice(TABLES["users"]["cat"]["values"])
            filt, cond = f" for users in {city}", f"u.city = '{city}'"
        else:
            v = rng.choice(TABLES["orders"]["nums"]["amount"]["values"])
            filt, cond = f" for orders with an amount above {v}", f"o.amount > {v}"
        request = f"List each order's ID and amount together with the name of the user who placed it{filt}."
        comment = f"Order IDs and amounts with the name of the user who placed them{filt}"
        return tables, request, comment, query(["o.id", "o.amount", "u.name"], frm, join, [cond])
    if kind == "spent":
        sel, grp = ["u.name", "SUM(o.amount) AS total_spent"], ["u.id", "u.name"]
        if rng.random() < 0.5:
            n = rng.choice([3, 5, 10])
            request = f"Show the {n} users who spent the most in total, with their name and total order amount."
            comment = f"Top {n} users by total order amount"
            return tables, request, comment, query(sel, frm, join, group=grp, order=["total_spent DESC"], limit=n)
        s = rng.choice(ORDERS_STATUS)
        request = f"Show each user's name and the total amount of their orders with status '{s}'."
        comment = f"Total amount of orders with status '{s}' per user"
        return tables, request, comment, query(sel, frm, join, [f"o.status = '{s}'"], grp)
    if kind == "city":
        where, filt = [], ""
        if rng.random() < 0.5:
            s = rng.choice(ORDERS_STATUS)
            where, filt = [f"o.status = '{s}'"], f" with status '{s}'"
        order, suffix = ([], "") if rng.random() < 0.5 else (["order_count DESC"], ", most orders first")
        request = f"How many orders{filt} were placed by users in each city{suffix}?"
        comment = f"Number of orders{filt} per user city{suffix}"
        return tables, request, comment, query(["u.city", "COUNT(*) AS order_count"], frm, join, where,
                                               ["u.city"], order=order)
    v = rng.choice(TABLES["orders"]["nums"]["amount"]["values"])
    request = f"Find the names of users who have placed at least one order with an amount above {v}."
    comment = f"Users with at least one order above {v}"
    return tables, request, comment, query(["u.name"], frm, join, [f"o.amount > {v}"], distinct=True)


def j_orders_products(rng):
    tables, frm, join = ["orders", "products"], "orders o", ["JOIN products p ON o.product_id = p.id"]
    kind = rng.choice(["list", "category", "revenue", "distinct"])
    cats = TABLES["products"]["cat"]["values"]
    if kind == "list":
        if rng.random() < 0.5:
            day = f"{rng.choice([2021, 2022, 2023, 2024])}-{rng.choice([1, 4, 7, 10]):02d}-01"
            filt, cond = f"placed after {day}", f"o.order_date > '{day}'"
        else:
            cat = rng.choice(cats)
            filt, cond = f"for a product in the {cat} category", f"p.category = '{cat}'"
        request = f"For every order {filt}, show the order ID, the product name and the quantity."
        comment = f"Order ID, product name and quantity of orders {filt}"
        return tables, request, comment, query(["o.id", "p.name", "o.quantity"], frm, join, [cond])
    if kind == "category":
        where, filt = [], ""
        if rng.random() < 0.5:
            s = rng.choice(ORDERS_STATUS)
            where, filt = [f"o.status = '{s}'"], f", counting only orders with status '{s}'"
        order, suffix = ([], "") if rng.random() < 0.5 else (["total_quantity DESC"], ", largest first")
        request = f"What is the total quantity ordered per product category{filt}{suffix}?"
        comment = f"Total quantity ordered per product category{filt}{suffix}"
        return tables, request, comment, query(["p.category", "SUM(o.quantity) AS total_quantity"], frm, join,
                                               where, ["p.category"], order=order)
    if kind == "revenue":
        cat = rng.choice(cats)
        request = f"What is the total order amount for each product in the {cat} category? Show the product name."
        comment = f"Total order amount per product in the {cat} category"
        return tables, request, comment, query(["p.name", "SUM(o.amount) AS total_amount"], frm, join,
                                               [f"p.category = '{cat}'"], ["p.id", "p.name"])
    s = rng.choice(ORDERS_STATUS)
    request = f"Which products appear in orders with status '{s}'? List each product name once."
    comment = f"Products that appear in orders with status '{s}'"
    return tables, request, comment, query(["p.name"], frm, join, [f"o.status = '{s}'"], distinct=True)


def j_employees_departments(rng):
    tables, frm, join = ["employees", "departments"], "employees e", ["JOIN departments d ON e.department_id = d.id"]
    kind = rng.choice(["list", "agg", "location", "having"])
    if kind == "list":
        f = rng.choice(["location", "salary", "title"])
        if f == "location":
            loc = rng.choice(TABLES["departments"]["cat"]["values"])
            filt, cond = f" for departments located in {loc}", f"d.location = '{loc}'"
        elif f == "salary":
            v = rng.choice(TABLES["employees"]["nums"]["salary"]["values"])
            filt, cond = f" for employees earning more than {v}", f"e.salary > {v}"
        else:
            title = rng.choice(TABLES["employees"]["cat"]["values"])
            filt, cond = f" for employees with the job title {title}", f"e.title = '{title}'"
        request = f"List each employee's name together with the name of their department{filt}."
        comment = f"Employee names with their department names{filt}"
        return tables, request, comment, query(["e.name", "d.name AS department_name"], frm, join, [cond])
    if kind == "agg":
        fn = rng.choice(["AVG", "MAX", "MIN", "SUM"])
        alias = f"{FUNC_ALIAS[fn]}_salary"
        order, suffix = ([], "") if rng.random() < 0.5 else ([f"{alias} DESC"], ", highest first")
        request = f"What is the {FUNC_WORD[fn]} employee salary in each department? Show the department name{suffix}."
        comment = f"{cap(FUNC_WORD[fn])} salary per department{suffix}"
        return tables, request, comment, query(["d.name AS department_name", f"{fn}(e.salary) AS {alias}"], frm,
                                               join, group=["d.id", "d.name"], order=order)
    if kind == "location":
        where, filt = [], ""
        if rng.random() < 0.5:
            v = rng.choice(TABLES["employees"]["nums"]["salary"]["values"])
            where, filt = [f"e.salary > {v}"], f" earning more than {v}"
        request = f"How many employees{filt} work in each department location?"
        comment = f"Number of employees{filt} per department location"
        return tables, request, comment, query(["d.location", "COUNT(*) AS employee_count"], frm, join, where,
                                               ["d.location"])
    n = rng.choice([5, 10, 20, 50])
    request = f"Which departments have more than {n} employees? Show the department name and the number of employees."
    comment = f"Departments with more than {n} employees"
    return tables, request, comment, query(["d.name AS department_name", "COUNT(*) AS employee_count"], frm, join,
                                           group=["d.id", "d.name"], having=f"COUNT(*) > {n}")


def j_invoices_customers(rng):
    tables, frm, join = ["invoices", "customers"], "invoices i", ["JOIN customers c ON i.customer_id = c.id"]
    kind = rng.choice(["list", "country", "distinct", "top"])
    countries = TABLES["customers"]["cat"]["values"]
    if kind == "list":
        if rng.random() < 0.5:
            s = rng.choice(INVOICE_STATUS)
            filt, cond = f"with status '{s}'", f"i.status = '{s}'"
        else:
            country = rng.choice(countries)
            filt, cond = f"of customers from {country}", f"c.country = '{country}'"
        request = f"Show the ID and amount of every invoice {filt}, together with the customer's name."
        comment = f"Invoices {filt} with the customer name"
        return tables, request, comment, query(["i.id", "i.amount", "c.name"], frm, join, [cond])
    if kind == "country":
        where, filt = [], ""
        if rng.random() < 0.5:
            s = rng.choice(INVOICE_STATUS)
            where, filt = [f"i.status = '{s}'"], f" with status '{s}'"
        order, suffix = ([], "") if rng.random() < 0.5 else (["total_amount DESC"], ", highest first")
        request = f"What is the total amount of invoices{filt} per customer country{suffix}?"
        comment = f"Total invoice amount{filt} per customer country{suffix}"
        return tables, request, comment, query(["c.country", "SUM(i.amount) AS total_amount"], frm, join, where,
                                               ["c.country"], order=order)
    if kind == "distinct":
        country = rng.choice(countries)
        v = rng.choice(TABLES["invoices"]["nums"]["amount"]["values"])
        request = f"Find the names of customers from {country} who have an invoice with an amount over {v}."
        comment = f"Customers from {country} with an invoice over {v}"
        return tables, request, comment, query(["c.name"], frm, join, [f"c.country = '{country}'", f"i.amount > {v}"],
                                               distinct=True)
    n = rng.choice([3, 5, 10])
    request = f"Which {n} customers have the most invoices? Show each customer's name and invoice count."
    comment = f"Top {n} customers by number of invoices"
    return tables, request, comment, query(["c.name", "COUNT(*) AS invoice_count"], frm, join,
                                           group=["c.id", "c.name"], order=["invoice_count DESC"], limit=n)


def j_enrollments(rng):
    if rng.random() < 0.5:
        tables, frm, join = ["enrollments", "students"], "enrollments e", ["JOIN students s ON e.student_id = s.id"]
        if rng.random() < 0.6:
            g = rng.choice(GRADES)
            where, filt = [f"e.grade = '{g}'"], ""
            if rng.random() < 0.4:
                major = rng.choice(TABLES["students"]["cat"]["values"])
                where, filt = where + [f"s.major = '{major}'"], f" majoring in {major}"
            request = f"Find the names of students{filt} who received the grade '{g}' in at least one course."
            comment = f"Students{filt} with at least one '{g}' grade"
            return tables, request, comment, query(["s.name"], frm, join, where, distinct=True)
        order, suffix = ([], "") if rng.random() < 0.5 else (["enrollment_count DESC"], ", most first")
        request = f"How many course enrollments are there per student major{suffix}?"
        comment = f"Number of enrollments per student major{suffix}"
        return tables, request, comment, query(["s.major", "COUNT(*) AS enrollment_count"], frm, join,
                                               group=["s.major"], order=order)
    tables, frm, join = ["enrollments", "courses"], "enrollments e", ["JOIN courses c ON e.course_id = c.id"]
    kind = rng.choice(["count", "having", "grade"])
    if kind == "grade":
        g = rng.choice(GRADES)
        request = f"Which courses have at least one enrollment with the grade '{g}'? List each course title once."
        comment = f"Courses with at least one '{g}' grade"
        return tables, request, comment, query(["c.title"], frm, join, [f"e.grade = '{g}'"], distinct=True)
    if kind == "having":
        n = rng.choice([10, 20, 30, 50, 100])
        request = f"List the titles of courses with more than {n} enrollments, along with their enrollment count."
        comment = f"Courses with more than {n} enrollments"
        return tables, request, comment, query(["c.title", "COUNT(*) AS enrollment_count"], frm, join,
                                               group=["c.id", "c.title"], having=f"COUNT(*) > {n}")
    where, filt = [], ""
    if rng.random() < 0.5:
        dept = rng.choice(TABLES["courses"]["cat"]["values"])
        where, filt = [f"c.department = '{dept}'"], f" in the {dept} department"
    request = f"How many enrollments does each course{filt} have? Show the course title."
    comment = f"Number of enrollments per course{filt}"
    return tables, request, comment, query(["c.title", "COUNT(*) AS enrollment_count"], frm, join, where,
                                           ["c.id", "c.title"])


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


# --------------------------------------------------------------------------------------
# Helpfulness preferences: hand-written fact table + computed arithmetic questions.
# Each fact: (questions, lead sentence, steps, closing tip, curt one-line answer).
# --------------------------------------------------------------------------------------

FACTS: list[tuple[list[str], str, list[str], str, str]] = [
    # cooking
    (["How do I cook white rice on the stove?", "What's the best way to make fluffy white rice in a pot?"],
     "Stovetop white rice turns out fluffy if you measure carefully and keep the lid on.",
     ["Rinse 1 cup of long-grain rice in cold water until the water runs mostly clear.",
      "Put it in a pot with about 2 cups of water (a little less for jasmine or basmati) and a pinch of salt.",
      "Bring to a boil, then turn the heat to low and cover with a tight-fitting lid.",
      "Simmer for about 18 minutes without lifting the lid.",
      "Take the pot off the heat, let it rest covered for 5 minutes, then fluff with a fork."],
     "If the rice is still firm, sprinkle in a little water, cover and steam for a few more minutes.",
     "Boil it in water until it's soft."),
    (["How do I cook quinoa?", "What's the water-to-quinoa ratio and how long does quinoa cook?"],
     "Quinoa cooks in about 15 minutes and only needs a quick rinse first.",
     ["Rinse 1 cup of quinoa in a fine sieve to wash off its naturally bitter coating.",
      "Add it to a pot with 2 cups of water or stock and a pinch of salt.",
      "Bring to a boil, cover, and simmer on low for about 15 minutes until the water is absorbed.",
      "Let it stand covered for 5 minutes, then fluff with a fork."],
     "Toasting the rinsed quinoa in a little oil for two minutes before adding water gives it a nuttier taste.",
     "Cook it like rice."),
    (["How do I cook brown rice so it isn't crunchy?"],
     "Brown rice keeps its bran layer, so it needs more water and more time than white rice.",
     ["Rinse 1 cup of brown rice.",
      "Combine it with about 2.5 cups of water and a pinch of salt in a pot.",
      "Bring to a boil, cover, and simmer on low for 40 to 45 minutes.",
      "Turn off the heat and let it steam, still covered, for 10 minutes before fluffing."],
     "If it is still crunchy at the end, add a few tablespoons of hot water and give it 5 more minutes.",
     "Cook it longer."),
    (["How do I make hard-boiled eggs that are easy to peel?", "How long do I boil eggs for hard-boiled eggs?"],
     "Gentle cooking followed by an ice bath gives firm yolks and shells that come off cleanly.",
     ["Place the eggs in a pot and cover them with cold water by about 2–3 cm (an inch).",
      "Bring the water to a full boil, then cover the pot and take it off the heat.",
      "Let the eggs stand in the hot water for 10 to 12 minutes.",
      "Move them to a bowl of ice water for at least 5 minutes.",
      "Crack the shell all over and peel from the wider end, where the air pocket is."],
     "Eggs that are a week or more old peel more easily than very fresh ones.",
     "Boil them for 10 minutes."),
    (["How do I make soft-boiled eggs with runny yolks?", "How long should I boil an egg for a runny yolk?"],
     "Soft-boiled eggs are all about timing, so start them in water that is already boiling.",
     ["Bring a pot of water to a gentle boil.",
      "Lower the eggs in straight from the fridge with a spoon.",
      "Cook for 6 minutes for a runny yolk or 7 minutes for a jammy one.",
      "Transfer them to ice water for 1 minute to stop the cooking, then peel or crack the top."],
     "Keep the boil gentle so the shells don't crack against the pot.",
     "About 6 minutes."),
    (["How do I cook pasta properly?", "Any tips for cooking pasta so it doesn't stick together?"],
     "Plenty of salted water and a little pasta water in the sauce make the biggest difference.",
     ["Bring a large pot of water to a rolling boil, about 1 litre per 100 g of pasta.",
      "Salt the water generously, then add the pasta and stir during the first minute so it doesn't stick.",
      "Cook for the time on the package, tasting a minute early; it should be tender but still slightly firm.",
      "Scoop out a cup of the cooking water, then drain.",
      "Toss the pasta with the sauce, adding splashes of the reserved water to make it glossy."],
     "There's no need to add oil to the water; stirring is what prevents sticking.",
     "Boil it and drain it."),
    (["How do I cook dried beans?", "Do I need to soak dried beans before cooking them?"],
     "Soaking isn't strictly required, but it shortens cooking and helps beans cook evenly.",
     ["Rinse the beans and pick out any small stones.",
      "Soak them in plenty of cold water for 8 hours or overnight, or bring them to a boil for 2 minutes and "
      "let them stand for 1 hour as a quick soak.",
      "Drain, cover with fresh water by about 5 cm, and bring to a boil.",
      "Simmer gently for 1 to 2 hours until tender, adding salt near the end."],
     "Red kidney beans must boil hard for at least 10 minutes to destroy a natural toxin, so never cook them "
     "only in a slow cooker on low.",
     "Soak and simmer them."),
    (["How do I keep a cut avocado from turning brown?", "How do I store half an avocado?"],
     "Browning comes from air reaching the flesh, so the goal is to limit contact with oxygen.",
     ["Brush the cut surface with lemon or lime juice.",
      "Press plastic wrap directly onto the flesh so no air pocket remains.",
      "Store it in the fridge and use it within a day."],
     "If the top layer browns anyway, scrape it off; the avocado underneath is fine.",
     "Put lemon juice on it."),
    (["How should I store fresh herbs so they last longer?"],
     "Soft and woody herbs like different storage, so treat them separately.",
     ["Trim the stems of soft herbs such as parsley, cilantro and mint and stand them in a jar of water.",
      "Cover the leaves loosely with a bag and keep the jar in the fridge; basil is the exception and prefers "
      "room temperature.",
      "Wrap hardy herbs such as rosemary and thyme in a slightly damp paper towel and keep them in a bag in the "
      "fridge.",
      "Change the water in the jar every couple of days."],
     "Chop leftover herbs, cover them with oil in an ice-cube tray and freeze them for cooking later.",
     "Put them in the fridge."),
    (["How can I chop onions without crying?"],
     "Onions release an irritating gas when their cells are crushed, so the trick is to crush fewer cells and "
     "keep the gas away from your eyes.",
     ["Chill the onion in the fridge for 15–30 minutes before cutting.",
      "Use a very sharp knife so it slices cleanly instead of crushing.",
      "Leave the root end for last, since it holds the most of the irritating compounds.",
      "Work near a running extractor fan or an open window."],
     "Wearing swimming goggles looks silly but works every time.",
     "Use a sharp knife."),
    (["What is the safe way to thaw frozen meat?", "Can I thaw chicken on the kitchen counter?"],
     "Meat should never be thawed on the counter, because the outside can sit in the temperature danger zone "
     "while the inside is still frozen.",
     ["Thaw in the fridge: plan about 24 hours for every 2 kg (4–5 lb), less for small cuts.",
      "For faster thawing, seal the meat in a leak-proof bag and submerge it in cold water, changing the water "
      "every 30 minutes.",
      "Use the microwave's defrost setting only if you will cook the meat immediately afterwards."],
     "Meat thawed in the fridge can be refrozen; meat thawed in water or the microwave should be cooked first.",
     "Thaw it in the fridge."),
    # programming
    (["How do I reverse a list in Python?", "What's the difference between reverse() and [::-1] in Python?"],
     "Python has three common ways, depending on whether you want a new list or to change the original.",
     ["`items[::-1]` returns a new, reversed copy and leaves `items` unchanged.",
      "`items.reverse()` reverses the list in place and returns `None`.",
      "`reversed(items)` gives an iterator, which is handy in a `for` loop without copying the list."],
     "Use `items[::-1]` when you need both versions, and `items.reverse()` when memory matters.",
     "Use reverse()."),
    (["How do I remove duplicates from a list in Python but keep the order?"],
     "Converting to a `set` removes duplicates but loses the order, so use a dictionary instead.",
     ["Write `unique = list(dict.fromkeys(items))`.",
      "Dictionaries keep insertion order (Python 3.7+), so the first occurrence of each value wins.",
      "This works for any hashable values such as numbers, strings and tuples."],
     "If the values are unhashable (for example lists), loop over them and keep a separate list of seen items.",
     "Use set()."),
    (["How do I read a text file line by line in Python?", "What's the memory-friendly way to loop over a big file in Python?"],
     "Iterating over the file object reads one line at a time, so even huge files use little memory.",
     ["Open the file with a `with` block so it is closed automatically: "
      "`with open(\"data.txt\", encoding=\"utf-8\") as f:`.",
      "Loop over it: `for line in f:`.",
      "Each `line` ends with a newline, so use `line.rstrip(\"\\n\")` to strip it."],
     "Always pass `encoding=\"utf-8\"` so the code behaves the same on every operating system.",
     "Use open()."),
    (["How do I sort a dictionary by its values in Python?"],
     "Dictionaries themselves aren't sorted, but you can sort their items and build a new dictionary.",
     ["Get the items sorted by value: `sorted(d.items(), key=lambda kv: kv[1])`.",
      "Add `reverse=True` to sort from largest to smallest.",
      "Wrap it in `dict(...)` if you need a dictionary again; it keeps the sorted order."],
     "For the top few entries only, `heapq.nlargest(3, d.items(), key=lambda kv: kv[1])` avoids a full sort.",
     "Use sorted()."),
    (["How do I merge two dictionaries in Python?", "How can I combine two dicts into one in Python?"],
     "There are several ways; in all of them, keys from the second dictionary win on conflicts.",
     ["In Python 3.9+, write `merged = a | b` to create a new dictionary.",
      "In older versions, `merged = {**a, **b}` does the same.",
      "To change `a` in place instead, call `a.update(b)`."],
     "None of these merge nested dictionaries recursively; write a small helper if you need that.",
     "Use update()."),
    (["How can I count how often each word appears in a text with Python?"],
     "The `collections.Counter` class does the counting for you.",
     ["Import it: `from collections import Counter`.",
      "Normalise and split the text: `words = text.lower().split()`.",
      "Count them: `counts = Counter(words)`.",
      "Get the most frequent ones with `counts.most_common(5)`."],
     "Strip punctuation first (for example with `re.findall(r\"[a-z']+\", text.lower())`) so 'end.' and "
     "'end' count as the same word.",
     "Use Counter."),
    (["How do I get the index while looping over a list in Python?"],
     "Use the built-in `enumerate` instead of managing a counter yourself.",
     ["Write `for i, item in enumerate(items):`.",
      "`i` starts at 0; use `enumerate(items, start=1)` to count from 1.",
      "Avoid `for i in range(len(items))`, which is longer and easier to get wrong."],
     "`enumerate` works with any iterable, including files and generators.",
     "Use enumerate."),
    (["How do I read a JSON file in Python?"],
     "The standard library's `json` module parses a file straight into dictionaries and lists.",
     ["Import the module: `import json`.",
      "Open the file: `with open(\"config.json\", encoding=\"utf-8\") as f:`.",
      "Parse it: `data = json.load(f)`.",
      "Catch `json.JSONDecodeError` if the file might be malformed."],
     "Use `json.loads(text)` when you already have the JSON as a string.",
     "Use json.load."),
    (["How do I safely convert a string to an integer in Python?"],
     "`int()` raises an error on bad input, so wrap it when the input comes from users or files.",
     ["Call `int(text.strip())` to ignore surrounding spaces.",
      "Put it in `try:` ... `except ValueError:` to handle values like 'abc' or '3.5'.",
      "In the `except` branch, return a default or show a helpful message."],
     "Use `float()` first if you need to accept decimals, then round as you see fit.",
     "Use int()."),
    (["How do I create a folder and all its parent folders in Python?"],
     "`pathlib` can create the whole path in one call.",
     ["Import it: `from pathlib import Path`.",
      "Call `Path(\"output/2024/reports\").mkdir(parents=True, exist_ok=True)`.",
      "`parents=True` creates missing parent folders and `exist_ok=True` avoids an error if it already exists."],
     "The older equivalent is `os.makedirs(path, exist_ok=True)`.",
     "Use os.makedirs."),
    (["How do I measure how long my Python code takes to run?"],
     "Use a high-resolution clock for one-off timings and `timeit` for small snippets.",
     ["Record `start = time.perf_counter()` before the code.",
      "Compute `elapsed = time.perf_counter() - start` afterwards; the result is in seconds.",
      "For tiny snippets, run `python -m timeit \"sum(range(1000))\"`, which repeats the code for accuracy."],
     "Prefer `perf_counter()` over `time.time()`, which can jump if the system clock changes.",
     "Use time.time()."),
    (["How do I create a virtual environment in Python?"],
     "A virtual environment keeps each project's packages separate.",
     ["In the project folder, run `python -m venv .venv`.",
      "Activate it with `source .venv/bin/activate` on macOS/Linux or `.venv\\Scripts\\activate` on Windows.",
      "Install packages with `pip install ...`; they go into `.venv` only.",
      "Run `deactivate` when you are done."],
     "Add `.venv/` to your `.gitignore` and record dependencies in a requirements file instead.",
     "Run python -m venv."),
    (["How do I join a list of strings with commas in Python?"],
     "Call `join` on the separator, not on the list.",
     ["Write `\", \".join(words)` to get 'a, b, c'.",
      "All items must be strings; for numbers use `\", \".join(map(str, numbers))`.",
      "Use `\"\\n\".join(lines)` to put each item on its own line."],
     "`join` is much faster than adding strings together in a loop.",
     "Use join."),
    (["How do I check whether a file exists in Python?"],
     "`pathlib` gives readable checks for files and folders.",
     ["Create a path: `p = Path(\"notes.txt\")`.",
      "`p.exists()` is true for files and folders; `p.is_file()` only for regular files.",
      "If you are about to open the file anyway, just open it inside `try`/`except FileNotFoundError`."],
     "Opening directly avoids a race where the file disappears between the check and the open.",
     "Use os.path.exists."),
    (["How do I remove duplicate values from an array in JavaScript?"],
     "A `Set` only keeps unique values, so converting back to an array is enough.",
     ["Write `const unique = [...new Set(values)];`.",
      "The original order of first occurrences is preserved.",
      "For arrays of objects, dedupe by a key: "
      "`[...new Map(items.map(o => [o.id, o])).values()]`."],
     "`Set` compares objects by reference, which is why objects need the key-based version.",
     "Use a Set."),
    (["How do I deep copy an object in JavaScript?"],
     "Modern JavaScript has a built-in deep copy.",
     ["Use `const copy = structuredClone(original);`.",
      "It handles nested objects, arrays, dates, maps and sets.",
      "Avoid `JSON.parse(JSON.stringify(obj))` for this: it drops functions and `undefined` and turns dates into "
      "strings."],
     "A spread copy (`{...obj}`) is only shallow: nested objects are still shared.",
     "Use JSON.stringify."),
    (["How do I wait for several promises at once in JavaScript?"],
     "Run the promises concurrently and wait for all of them together.",
     ["Use `const results = await Promise.all([fetchA(), fetchB()]);`.",
      "`results` keeps the same order as the input array.",
      "`Promise.all` rejects as soon as one promise fails; use `Promise.allSettled` to get every outcome."],
     "Starting the calls before awaiting is what makes them run in parallel.",
     "Use Promise.all."),
    (["How do I undo my last git commit but keep the changes?", "I committed too early in git. How do I take the commit back without losing my work?"],
     "If the commit hasn't been pushed yet, move the branch back one commit and keep your files as they are.",
     ["Run `git reset --soft HEAD~1` to undo the commit and keep the changes staged.",
      "Or run `git reset HEAD~1` to keep the changes but unstage them.",
      "Fix what you need and commit again."],
     "If the commit is already pushed and shared, use `git revert HEAD` instead, which adds a new commit that "
     "undoes it.",
     "git reset HEAD~1."),
    (["How do I create a new branch in git and switch to it?"],
     "You can create and switch in one command.",
     ["Run `git switch -c feature-name` (or the older `git checkout -b feature-name`).",
      "Commit your work on the new branch as usual.",
      "Publish it with `git push -u origin feature-name` so later pushes need no arguments."],
     "Run `git branch` to list branches; the current one is marked with an asterisk.",
     "git checkout -b name."),
    (["How do I discard my local changes to a file in git?"],
     "Git can restore the file to its last committed version, but the discarded edits are gone for good.",
     ["Run `git status` to confirm which file you mean.",
      "If the change is staged, unstage it first with `git restore --staged path/to/file`.",
      "Run `git restore path/to/file` (or `git checkout -- path/to/file` on older git)."],
     "If you might want the changes later, run `git stash` instead of discarding them.",
     "git checkout the file."),
    (["How do I temporarily save unfinished work in git without committing?"],
     "`git stash` shelves your changes and gives you a clean working tree.",
     ["Run `git stash` (add `-u` to include untracked files).",
      "Switch branches or pull as needed.",
      "Bring the work back with `git stash pop`.",
      "Use `git stash list` to see everything you have stashed."],
     "Name stashes with `git stash push -m \"message\"` so they are easy to find later.",
     "Use git stash."),
    (["How do I resolve a merge conflict in git?", "Git says there's a merge conflict. What do I do?"],
     "A conflict means both branches changed the same lines; you decide what the final version should be.",
     ["Run `git status` to see the conflicted files.",
      "Open each file and find the blocks between `<<<<<<<`, `=======` and `>>>>>>>`.",
      "Edit the block to the version you want and delete the markers.",
      "Stage each fixed file with `git add`, then run `git commit` to finish the merge."],
     "If things go wrong, `git merge --abort` returns you to the state before the merge.",
     "Edit the file and commit."),
    # health basics
    (["What should I do right away for a minor burn?", "I burned my hand on the stove. What first aid should I do?"],
     "Cooling the burn quickly limits the damage; this is general first-aid information, not a substitute for "
     "medical advice.",
     ["Hold the burn under cool running water for 20 minutes.",
      "Remove rings, watches or tight clothing near the area before it swells, unless they are stuck to the skin.",
      "Cover it loosely with cling film or a clean, non-fluffy dressing.",
      "Take an over-the-counter painkiller if needed, following the label."],
     "Don't use ice, butter or creams, and get medical help for burns larger than the person's hand, on the "
     "face, hands or genitals, or caused by chemicals or electricity.",
     "Put it under cold water."),
    (["How should I take care of a small cut?"],
     "Most small cuts heal well if you stop the bleeding and keep them clean.",
     ["Wash your hands, then press on the cut with a clean cloth until the bleeding stops.",
      "Rinse the wound under clean running water.",
      "Cover it with a plaster or sterile dressing and change it daily or when it gets wet.",
      "Watch for redness, swelling, warmth or pus, which can mean infection."],
     "See a doctor if the cut is deep or gaping, keeps bleeding after 10 minutes of pressure, or was caused by "
     "something dirty or rusty.",
     "Put a bandage on it."),
    (["What's the best first aid for a sprained ankle?"],
     "For the first few days, rest, cold and support reduce swelling and pain.",
     ["Rest the ankle and avoid putting weight on it if walking hurts.",
      "Apply ice wrapped in a towel for 15–20 minutes every 2–3 hours.",
      "Support it with an elastic bandage that is snug but not tight.",
      "Keep the ankle raised above the level of your heart when you can."],
     "Get it checked if you can't put any weight on it, the pain is severe, or the foot looks misshapen or "
     "feels numb.",
     "Rest and ice it."),
    (["How much sleep do adults need?", "How many hours of sleep should I get as an adult?"],
     "Most adults need at least 7 hours of sleep a night, and many feel best with 7 to 9.",
     ["Keep the same bedtime and wake-up time, even on weekends.",
      "Make the bedroom dark, quiet and cool.",
      "Avoid caffeine in the afternoon and heavy meals late in the evening.",
      "Put screens away for the last half hour before bed."],
     "If you regularly feel tired despite enough sleep, or snore loudly, mention it to a doctor.",
     "About 8 hours."),
    (["How much exercise should an adult get each week?"],
     "The World Health Organization recommends a mix of aerobic activity and strength work for adults.",
     ["Aim for 150–300 minutes of moderate activity, such as brisk walking, per week.",
      "Or do 75–150 minutes of vigorous activity, such as running, or a mix of the two.",
      "Add muscle-strengthening exercises on at least 2 days a week.",
      "Break up long periods of sitting, even with short walks."],
     "Any amount is better than none; if you're starting out, build up gradually.",
     "Exercise a few times a week."),
    (["How do I wash my hands properly?", "What's the right way to wash hands to get rid of germs?"],
     "Good handwashing takes about 20 seconds and covers every part of the hands.",
     ["Wet your hands with clean running water and apply soap.",
      "Rub palms, backs of the hands, between the fingers and under the nails.",
      "Scrub for at least 20 seconds, about two rounds of 'Happy Birthday'.",
      "Rinse well and dry with a clean towel or air dryer."],
     "Hand sanitizer with at least 60% alcohol helps when soap isn't available, but not on visibly dirty hands.",
     "Use soap and water."),
    (["How can I reduce eye strain from looking at screens all day?"],
     "Screen eye strain mostly comes from focusing at one distance and blinking less, so build in breaks.",
     ["Follow the 20-20-20 rule: every 20 minutes, look at something about 20 feet (6 metres) away for 20 "
      "seconds.",
      "Place the screen about an arm's length away, slightly below eye level.",
      "Reduce glare and match the screen brightness to the room.",
      "Blink deliberately, or use lubricating eye drops if your eyes feel dry."],
     "If symptoms persist, have your eyes tested; you may need glasses for computer work.",
     "Take breaks."),
    (["How much water should I drink each day?"],
     "Needs vary with body size, activity and climate, so there is no single number that fits everyone.",
     ["As a rough guide, US health authorities suggest about 3.7 litres of total fluid a day for men and 2.7 "
      "litres for women, including water from food.",
      "Drink when you are thirsty and with meals.",
      "Drink more when it is hot or when you exercise.",
      "Pale yellow urine is a simple sign that you're drinking enough."],
     "People with heart or kidney conditions should follow their doctor's advice on fluids.",
     "Eight glasses a day."),
    # travel
    (["How can I reduce jet lag?", "What helps with jet lag after a long flight?"],
     "Jet lag happens because your body clock lags behind the new time zone, so shift it deliberately.",
     ["A few days before the trip, move your bedtime an hour a day toward the destination's time.",
      "On arrival, switch to local meal and sleep times right away.",
      "Get daylight in the morning after flying east, or in the late afternoon after flying west.",
      "Keep naps under 30 minutes and limit alcohol and caffeine."],
     "Drinking water during the flight helps you feel better, even if it doesn't fix the body clock.",
     "Sleep on the plane."),
    (["How early should I get to the airport?", "How much time before my flight should I arrive at the airport?"],
     "The usual advice is 2 hours before a domestic flight and 3 hours before an international one.",
     ["Check your airline's check-in and bag-drop deadlines, which can be earlier than you expect.",
      "Check in online beforehand to save time.",
      "Add extra time at busy airports, during holidays, or if you're checking a bag.",
      "Look up the security wait times for your airport if it publishes them."],
     "Arriving early costs you a coffee; arriving late can cost you the flight.",
     "Two hours early."),
    (["How do I pack a carry-on bag efficiently?"],
     "A small bag holds a lot if you plan outfits and use the space well.",
     ["Choose clothes in a few colours that all go together.",
      "Roll soft clothes, and use packing cubes to keep things sorted.",
      "Wear your bulkiest shoes and jacket on the plane.",
      "Put liquids in small containers in a clear bag and check your airport's current liquid rules."],
     "Weigh the bag at home: many airlines limit carry-ons to 7–10 kg.",
     "Pack light."),
    (["How can I find cheaper flights?"],
     "Flexibility is the biggest money saver when booking flights.",
     ["Compare prices on a few search sites and on the airline's own site.",
      "Search with flexible dates; midweek flights are often cheaper.",
      "Check nearby airports at both ends of the trip.",
      "Set price alerts and book when the fare drops.",
      "Add baggage and seat fees before comparing, since low fares often exclude them."],
     "Clearing cookies isn't needed; fares change because of demand, not your search history.",
     "Book early."),
    (["How should I travel with prescription medication?"],
     "Keeping medicine accessible and clearly labelled avoids most problems at security and abroad.",
     ["Pack it in your carry-on, not in checked luggage.",
      "Keep it in the original labelled packaging and bring a copy of the prescription or a doctor's letter.",
      "Check the destination country's rules, since some medicines are restricted.",
      "Bring a few extra days' supply in case of delays, and plan doses around time-zone changes."],
     "Ask your pharmacist how to time doses if you are crossing many time zones.",
     "Bring your pills."),
    (["What should I bring on a day hike?"],
     "A light but complete pack keeps a small problem from becoming a big one.",
     ["Plenty of water and some snacks.",
      "A map or offline map on your phone, plus a charged phone.",
      "Layers, including a rain jacket, even if the forecast is good.",
      "Sun protection: hat, sunglasses and sunscreen.",
      "A small first-aid kit and a headlamp."],
     "Tell someone your route and when you expect to be back.",
     "Bring water."),
    (["How can I avoid motion sickness when travelling?"],
     "Motion sickness comes from a mismatch between what your eyes and your inner ear sense.",
     ["Sit where motion is smallest: the front seat of a car, over the wings on a plane, or mid-ship on a boat.",
      "Look at the horizon rather than reading or using your phone.",
      "Get fresh air and eat light meals before and during the trip.",
      "Ask a pharmacist about over-the-counter remedies, which work best taken before you travel."],
     "Some remedies cause drowsiness, so don't take them if you're the one driving.",
     "Look out the window."),
    (["How should I handle money when travelling abroad?"],
     "A mix of cards and a little cash, kept in different places, covers most situations.",
     ["Check your cards' foreign transaction fees and tell your bank about the trip if it asks.",
      "Carry two cards and keep them separately.",
      "Use ATMs inside banks, and choose to be charged in the local currency.",
      "Keep a small amount of local cash for transport and small shops."],
     "Note your bank's emergency number in case a card is lost or blocked.",
     "Use a card."),
    # study
    (["What is spaced repetition and how do I use it to study?", "How do I use flashcards with spaced repetition?"],
     "Spaced repetition means reviewing material just as you are about to forget it, at growing intervals.",
     ["Turn the material into small question-and-answer flashcards.",
      "Review new cards the next day, then after about 3 days, a week, and longer each time you remember them.",
      "Move a card back to short intervals whenever you get it wrong.",
      "Use an app like Anki or a Leitner box to schedule reviews, and study a little every day."],
     "Short daily sessions beat one long session before the exam.",
     "Review often."),
    (["What is active recall and how do I practise it?"],
     "Active recall means pulling information out of memory instead of re-reading it, which strengthens memory "
     "far more.",
     ["After reading a section, close the book and write down everything you remember.",
      "Answer practice questions or past exam papers without notes.",
      "Check your answers and note the gaps.",
      "Study the gaps, then test yourself again later."],
     "If re-reading feels easy, that's a warning sign; recall should feel a bit effortful.",
     "Quiz yourself."),
    (["How does the Pomodoro technique work?", "Can you explain the Pomodoro method for studying?"],
     "The Pomodoro technique breaks work into short, focused blocks with planned breaks.",
     ["Pick one task and set a timer for 25 minutes.",
      "Work only on that task until the timer rings.",
      "Take a 5-minute break.",
      "After four rounds, take a longer break of 15–30 minutes."],
     "Adjust the lengths if needed; the point is focused work followed by real rest.",
     "Work 25 minutes, then rest."),
    (["How should I take notes during lectures?"],
     "Good notes capture ideas in your own words and leave room for review.",
     ["Try the Cornell layout: a main notes column, a narrow cue column for questions, and a summary at the "
      "bottom.",
      "Write key points and examples, not every word.",
      "Use abbreviations and symbols to keep up.",
      "Review and tidy the notes within 24 hours, filling in the cue questions."],
     "Handwriting tends to make you summarise more than typing, which helps understanding.",
     "Write down the important parts."),
    (["How can I learn vocabulary in a new language faster?"],
     "Words stick best when you meet them in context and review them over time.",
     ["Learn words inside example sentences rather than as isolated pairs.",
      "Review them with spaced repetition flashcards.",
      "Group words by theme, such as food or travel.",
      "Use new words actively: say them aloud and write your own sentences."],
     "A steady 10–20 new words a day is more sustainable than big weekly cramming.",
     "Use flashcards."),
    (["How should I prepare for an exam that is one week away?"],
     "A week is enough time if you plan it and focus on practice.",
     ["List every topic and mark each one as strong, okay or weak.",
      "Make a day-by-day plan that covers weak topics first and revisits each topic at least twice.",
      "Do practice questions and past papers under timed conditions.",
      "Sleep properly, especially the night before the exam."],
     "Use the last day for light review and recall, not for learning new material.",
     "Study every day."),
    (["How can I stay focused while studying?", "I keep getting distracted when I study. What can I do?"],
     "Focus is easier to protect than to force, so remove distractions before you start.",
     ["Put your phone in another room or use an app blocker.",
      "Set a specific goal for each session, such as finishing five problems.",
      "Study in the same quiet place so your brain associates it with work.",
      "Take short, planned breaks to move and drink water."],
     "If your mind keeps wandering, write the distracting thought down and come back to it later.",
     "Turn off your phone."),
    (["How do I structure an essay?"],
     "A clear essay follows a simple structure that guides the reader through your argument.",
     ["Introduction: give context and end with a one-sentence thesis.",
      "Body paragraphs: one point each, starting with a topic sentence, followed by evidence and an explanation "
      "of how it supports the thesis.",
      "Conclusion: restate the thesis in new words and summarise the main points.",
      "Outline before you write, then revise for clarity."],
     "Reading the essay aloud is a quick way to catch awkward sentences.",
     "Intro, body, conclusion."),
    # home repair
    (["How do I unclog a bathroom sink?", "My sink drains very slowly. How can I fix it?"],
     "Most sink clogs are hair and soap near the top of the drain, so start with the simplest fixes.",
     ["Remove the stopper and pull out any hair with a drain hair tool or bent wire.",
      "Cover the overflow hole with a wet cloth and use a cup plunger with a few centimetres of water in the "
      "basin.",
      "If that fails, put a bucket under the U-shaped trap, unscrew it and clean it out.",
      "For deeper clogs, use a small drain snake."],
     "Avoid mixing chemical drain cleaners, and never plunge after using one.",
     "Use a plunger."),
    (["Why does my toilet keep running, and how do I fix it?", "My toilet tank keeps refilling on its own. How do I fix it?"],
     "A running toilet usually means water is leaking from the tank into the bowl or the tank is overfilling.",
     ["Lift the tank lid and check the flapper at the bottom; if it is warped or doesn't seal, replace it.",
      "Check the chain: it should have a little slack but not enough to get caught under the flapper.",
      "Adjust the float so the water stops about 2–3 cm below the top of the overflow tube.",
      "If water still runs, replace the fill valve."],
     "Put a few drops of food colouring in the tank; if colour appears in the bowl without flushing, the "
     "flapper is leaking.",
     "Replace the flapper."),
    (["How do I patch a small hole in drywall?"],
     "Small holes are an easy weekend repair with filler and a little patience.",
     ["For nail holes, press lightweight spackle in with a putty knife and scrape it flush.",
      "For holes up to about 10 cm, cover them with a self-adhesive mesh patch.",
      "Spread thin coats of joint compound over the patch, feathering the edges, and let each coat dry.",
      "Sand smooth, prime, and paint."],
     "Several thin coats give a flatter finish than one thick coat.",
     "Fill it with spackle."),
    (["How do I fix a squeaky door hinge?", "What can I do about a door that creaks every time it opens?"],
     "A squeak is metal rubbing on metal, so clean and lubricate the hinge pin.",
     ["Close the door and tap the hinge pin up and out with a nail and hammer, one hinge at a time.",
      "Clean the pin with a rag or fine steel wool.",
      "Coat it lightly with white lithium grease or silicone lubricant.",
      "Put the pin back and swing the door a few times to spread the grease."],
     "Penetrating sprays can quiet a hinge briefly, but a proper grease lasts longer.",
     "Use WD-40."),
    (["How do I fix a dripping tap?", "How can I stop a leaky faucet from dripping?"],
     "A drip usually comes from a worn washer or cartridge, which is cheap to replace.",
     ["Turn off the water supply under the sink and open the tap to drain it.",
      "Plug the drain so small parts can't fall in.",
      "Remove the handle and unscrew the valve to reach the washer or cartridge.",
      "Take the worn part to a hardware store to buy an exact match, fit it, and reassemble."],
     "Lay the parts out in order as you remove them so reassembly is easy.",
     "Replace the washer."),
    (["How do I bleed a radiator?"],
     "Bleeding lets out trapped air that stops the top of a radiator from heating.",
     ["Turn the heating off and let the radiators cool.",
      "Hold a cloth under the bleed valve at the top corner and open it a quarter turn with a radiator key.",
      "When the hissing stops and water starts to drip, close the valve.",
      "Check the boiler pressure gauge and top it up if it is below the level in the boiler's manual."],
     "Start with the radiator furthest from the boiler on the lowest floor.",
     "Open the valve with a radiator key."),
    (["How do I recaulk a bathtub?"],
     "New caulk only seals well on a clean, completely dry surface.",
     ["Scrape out all the old caulk with a plastic scraper or caulk remover tool.",
      "Clean the joint with rubbing alcohol and let it dry fully.",
      "Run painter's tape along both sides of the joint.",
      "Apply a steady bead of silicone bathroom caulk, smooth it with a wet finger, and pull off the tape.",
      "Let it cure for the time on the label, often 24 hours, before using the tub."],
     "Filling the tub with water before caulking opens the joint to its widest, which reduces cracking later.",
     "Put new caulk on."),
    (["What should I do when a circuit breaker trips?", "The power went out in one room and a breaker tripped. What should I do?"],
     "A breaker trips to protect the circuit from overload or a fault.",
     ["Switch off or unplug the devices on that circuit.",
      "At the panel, find the breaker sitting in the middle or OFF position.",
      "Push it firmly to OFF, then back to ON.",
      "Plug devices back in one at a time to find the one that caused it."],
     "If it trips again straight away with nothing plugged in, stop and call an electrician.",
     "Flip it back on."),
    (["How do I hang a heavy picture or mirror securely?"],
     "Heavy items need a solid fixing: a wall stud or an anchor rated for the weight.",
     ["Weigh the item and check the weight rating of your hooks or anchors.",
      "Use a stud finder to locate a stud and screw directly into it where possible.",
      "Where there is no stud, use heavy-duty anchors such as toggle bolts.",
      "Use two fixing points and a level so it hangs straight and stays put."],
     "Check for pipes and cables with a detector before drilling.",
     "Use a nail."),
    (["How do I fix a door that sticks?"],
     "Most sticking doors are caused by loose hinges or swelling from humidity.",
     ["Tighten the hinge screws; if they spin, replace the top one with a longer screw that reaches the frame.",
      "Rub chalk on the door edge and close it to see where it rubs.",
      "Sand or plane the marked area lightly.",
      "Seal the bare wood with paint or varnish so it doesn't absorb moisture."],
     "Fix the hinges first; that alone often solves it.",
     "Sand the door."),
    # cleaning
    (["How do I get a coffee stain out of a shirt?", "I spilled coffee on my shirt. How do I get the stain out?"],
     "Act quickly and keep heat away from the stain until it is gone.",
     ["Blot up as much coffee as possible with a clean cloth.",
      "Rinse the stain from the back with cold water.",
      "Rub in a little liquid laundry detergent and let it sit for 10 minutes.",
      "Wash as usual, and check the stain before drying."],
     "A dryer's heat can set a stain permanently, so air-dry until it's fully gone.",
     "Wash it."),
    (["How do I descale a kettle?", "How do I remove limescale from my kettle?"],
     "Limescale dissolves in mild acids such as vinegar or citric acid.",
     ["Fill the kettle halfway with equal parts white vinegar and water, or water with 1–2 tablespoons of "
      "citric acid.",
      "Bring it to the boil, switch it off, and leave it for about an hour.",
      "Pour it out and wipe away loosened scale.",
      "Rinse, then boil and discard fresh water once or twice to remove any taste."],
     "Descaling every month or two in hard-water areas keeps the kettle efficient.",
     "Use vinegar."),
    (["How can I clean my oven without harsh chemicals?"],
     "Baking soda and time do most of the work.",
     ["Take out the racks and soak them in hot soapy water.",
      "Mix baking soda with a little water to make a spreadable paste.",
      "Coat the inside of the cold oven, avoiding the heating elements, and leave it overnight.",
      "Wipe it out with a damp cloth, then spray a little vinegar on the remaining residue and wipe again."],
     "A plastic scraper helps with stubborn spots without scratching the enamel.",
     "Use oven cleaner."),
    (["How do I get red wine out of a carpet?"],
     "Speed matters, and blotting rather than rubbing keeps the stain from spreading.",
     ["Blot the wine with a clean white cloth, working from the outside in.",
      "Pour a little cold water on the stain and blot again.",
      "Mix a tablespoon of dish soap and a tablespoon of white vinegar in two cups of warm water, sponge it on, "
      "and blot.",
      "Rinse with cold water, blot dry, and let it air-dry."],
     "Test any cleaner on a hidden spot first to make sure it doesn't affect the colour.",
     "Blot it."),
    (["What's the easiest way to clean a microwave?"],
     "Steam loosens dried-on food so it wipes off with little effort.",
     ["Put a microwave-safe bowl of water with a few lemon slices or a spoon of vinegar inside.",
      "Heat it for about 3–5 minutes until the window is steamy.",
      "Leave the door closed for a few more minutes.",
      "Carefully remove the hot bowl and wipe the inside with a sponge."],
     "Cover food with a microwave lid next time to prevent splatters.",
     "Steam it with water."),
    (["How do I remove mould from shower grout?"],
     "Start with gentle cleaners and keep the room ventilated while you work.",
     ["Open a window or run the fan, and wear gloves.",
      "Spray undiluted white vinegar on the grout, leave it for an hour, and scrub with a stiff brush.",
      "For stubborn stains, use a diluted bleach solution or a mould cleaner, following the label.",
      "Rinse and dry the area, and keep it ventilated after showers."],
     "Never mix bleach with vinegar or ammonia, because it releases toxic gases.",
     "Use bleach."),
]

# safe minimum internal temperatures (USDA)
TEMPERATURES = [
    ("chicken", 74, 165, "", "Check the thickest part of the breast and thigh."),
    ("ground beef", 71, 160, "", "Burgers should show no pink juices, but only a thermometer is reliable."),
    ("pork chops", 63, 145, " followed by a 3-minute rest", "The centre may still look slightly pink."),
    ("fish", 63, 145, "", "The flesh should be opaque and flake easily with a fork."),
    ("turkey", 74, 165, "", "Check the innermost part of the thigh, the wing and the thickest part of the breast."),
    ("reheated leftovers", 74, 165, "", "Stir halfway through so there are no cold spots."),
]


def fact_groups() -> list[list[dict]]:
    groups = []
    for questions, lead, steps, tip, curt in FACTS:
        body = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
        chosen = f"{lead}\n\n{body}\n\n{tip}"
        groups.append([{"instruction": q, "chosen": chosen, "rejected": curt} for q in questions])
    for food, c, f, rest, check in TEMPERATURES:
        q = f"What internal temperature should {food} reach to be safe to eat?"
        chosen = (f"{cap(food)} is safe to eat once it reaches {c} °C ({f} °F){rest}, according to USDA "
                  f"guidance.\n\n1. Use an instant-read food thermometer; colour alone isn't reliable.\n"
                  f"2. Insert it into the thickest part, away from bone and fat.\n3. {check}\n\n"
                  f"Clean the thermometer between readings.")
        groups.append([{"instruction": q, "chosen": chosen, "rejected": f"{f} °F."}])
    return groups


def fmt(x: float) -> str:
    """Shortest exact-looking decimal: 4.0 -> '4', 0.12 -> '0.12' (rounding hides float noise)."""
    return f"{round(x, 4):g}"


def computed_rows(rng: random.Random) -> list[dict]:
    """Arithmetic questions: answers are computed, so they are correct by construction."""
    rows = []
    for c in rng.sample(range(-20, 105, 5), 12):
        f = c * 9 / 5 + 32
        rows.append({"instruction": f"Convert {c} °C to Fahrenheit.",
                     "chosen": f"To convert Celsius to Fahrenheit, multiply by 9/5 and then add 32.\n\n"
                               f"1. {c} × 9/5 = {fmt(c * 9 / 5)}\n2. {fmt(c * 9 / 5)} + 32 = {fmt(f)}\n\n"
                               f"So {c} °C is {fmt(f)} °F.",
                     "rejected": f"{fmt(f)} °F."})
    for k in rng.sample(range(-3, 15), 8):
        f, c = 32 + 9 * k, 5 * k
        rows.append({"instruction": f"What is {f} °F in Celsius?",
                     "chosen": f"To convert Fahrenheit to Celsius, subtract 32 and then multiply by 5/9.\n\n"
                               f"1. {f} − 32 = {f - 32}\n2. {f - 32} × 5/9 = {c}\n\nSo {f} °F is {c} °C.",
                     "rejected": f"{c} °C."})
    for km in rng.sample([3, 5, 8, 10, 15, 21, 42, 50, 100, 160], 8):
        mi = km * 0.621371
        rows.append({"instruction": f"How many miles is {km} km?",
                     "chosen": f"One kilometre is about 0.621 miles, so multiply the distance by 0.621371.\n\n"
                               f"1. {km} × 0.621371 = {mi:.2f}\n2. Rounded, that is about {mi:.1f} miles.\n\n"
                               f"A quick mental shortcut: divide by 8 and multiply by 5.",
                     "rejected": f"About {mi:.0f} miles."})
    for kg in rng.sample([2, 5, 10, 20, 25, 50, 60, 75, 80, 100], 8):
        lb = kg * 2.20462
        rows.append({"instruction": f"Convert {kg} kg to pounds.",
                     "chosen": f"One kilogram is about 2.205 pounds, so multiply by 2.20462.\n\n"
                               f"1. {kg} × 2.20462 = {lb:.2f}\n2. Rounded, that is about {lb:.1f} lb.\n\n"
                               f"For a rough estimate, double the kilograms and add 10%.",
                     "rejected": f"{lb:.0f} lb."})
    for inches in rng.sample([2, 5, 8, 12, 15, 24, 30, 36, 50, 65], 8):
        cm = inches * 2.54
        rows.append({"instruction": f"How many centimetres are in {inches} inches?",
                     "chosen": f"One inch is exactly 2.54 centimetres, so multiply by 2.54.\n\n"
                               f"1. {inches} × 2.54 = {fmt(cm)}\n"
                               f"2. So {inches} inches is {fmt(cm)} cm, or about {fmt(round(cm))} cm.\n\n"
                               f"To go back from centimetres to inches, divide by 2.54.",
                     "rejected": f"{fmt(cm)} cm."})
    for miles in rng.sample([1, 3, 5, 10, 13, 26, 60, 100], 6):
        km = miles * 1.609344
        rows.append({"instruction": f"Convert {miles} miles to kilometres.",
                     "chosen": f"One mile is about 1.609 kilometres, so multiply by 1.609344.\n\n"
                               f"1. {miles} × 1.609344 = {km:.2f}\n2. Rounded, that is about {km:.1f} km.\n\n"
                               f"A quick estimate: multiply by 8 and divide by 5.",
                     "rejected": f"About {km:.0f} km."})
    pairs = [(p, n) for p in (5, 10, 12, 15, 20, 25, 30, 40, 75) for n in (40, 60, 80, 120, 200, 250, 360, 480)]
    for p, n in rng.sample(pairs, 12):
        r = p * n / 100
        rows.append({"instruction": f"What is {p}% of {n}?",
                     "chosen": f"A percentage is a fraction of 100, so convert it and multiply.\n\n"
                               f"1. {p}% = {p}/100 = {fmt(p / 100)}\n2. {fmt(p / 100)} × {n} = {fmt(r)}\n\n"
                               f"So {p}% of {n} is {fmt(r)}.",
                     "rejected": fmt(r)})
    for bill, tip in rng.sample([(b, t) for b in (24, 36, 48, 60, 85, 120) for t in (10, 15, 18, 20)], 12):
        amount = bill * tip / 100
        rows.append({"instruction": f"How much is {'an' if tip in (8, 11, 18) else 'a'} {tip}% tip on a ${bill} bill, and what is the total?",
                     "chosen": f"Multiply the bill by the tip percentage, then add the tip to the bill.\n\n"
                               f"1. Tip: ${bill} × {tip}/100 = ${amount:.2f}\n"
                               f"2. Total: ${bill} + ${amount:.2f} = ${bill + amount:.2f}\n\n"
                               f"Tip ${amount:.2f}, total ${bill + amount:.2f}.",
                     "rejected": f"${amount:.2f}."})
    return rows


def build_helpful(rng: random.Random) -> tuple[list, list]:
    groups = fact_groups() + [[row] for row in computed_rows(rng)]
    total = sum(len(g) for g in groups)
    if total < HELPFUL_TRAIN + HELPFUL_EVAL:
        raise RuntimeError(f"only {total} helpfulness rows")
    rng.shuffle(groups)
    # whole groups go to one split, so paraphrases of an eval question never appear in train
    train, evalrows = [], []
    for g in groups:
        if len(evalrows) + len(g) <= HELPFUL_EVAL:
            evalrows += g
        elif len(train) + len(g) <= HELPFUL_TRAIN:
            train += g
    if len(evalrows) != HELPFUL_EVAL or len(train) != HELPFUL_TRAIN:
        raise RuntimeError(f"split sizes {len(train)}/{len(evalrows)}")
    rng.shuffle(train)
    rng.shuffle(evalrows)
    return train, evalrows


# --------------------------------------------------------------------------------------
# Registry + writing
# --------------------------------------------------------------------------------------

ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
SHAREGPT_FORMAT = {
    "formatting": "sharegpt", "ranking": True,
    "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
    "tags": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
             "system_tag": "system"},
}
REGISTRY = {
    "sql_sft": {"file_name": "sql_sft_train.json", "columns": ALPACA_COLUMNS,
                "description": "SQL generation, alpaca SFT; ~25% of answers in the preferred commented style."},
    "sql_sft_eval": {"file_name": "sql_sft_eval.json", "columns": ALPACA_COLUMNS,
                     "description": "Held-out SQL generation requests for SFT evaluation."},
    "sql_dpo": {"file_name": "sql_dpo_train.json", "ranking": True, "columns": ALPACA_COLUMNS,
                "description": "SQL style preferences: output = [commented multi-line, one-line]."},
    "sql_dpo_eval": {"file_name": "sql_dpo_eval.json", "ranking": True, "columns": ALPACA_COLUMNS,
                     "description": "Held-out SQL style preferences for DPO evaluation."},
    "sql_dpo_sharegpt": {
        "file_name": "sql_dpo_sharegpt_train.json", **SHAREGPT_FORMAT,
        "description": "SQL style preferences in sharegpt format, some with system prompts and history."},
    "sql_dpo_sharegpt_eval": {
        "file_name": "sql_dpo_sharegpt_eval.json", **SHAREGPT_FORMAT,
        "description": "Held-out sharegpt-format SQL style preferences."},
    "helpful_pref": {"file_name": "helpful_pref_train.json", "ranking": True,
                     "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
                     "description": "General helpfulness: detailed structured answer vs. curt reply."},
    "helpful_pref_eval": {"file_name": "helpful_pref_eval.json", "ranking": True,
                          "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"},
                          "description": "Held-out helpfulness preferences."},
}


SHAREGPT_EVAL_FROM = 50  # 50 train rows, 10 held out


def write_json(path: Path, data) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
    path.write_bytes(text.encode("utf-8"))


def main() -> None:
    rng = random.Random(SEED)
    sql = build_sql(rng)
    helpful_train, helpful_eval = build_helpful(rng)
    outputs = {
        "sql_sft_train.json": sql["sft_train"],
        "sql_sft_eval.json": sql["sft_eval"],
        "sql_dpo_train.json": sql["dpo_train"],
        "sql_dpo_eval.json": sql["dpo_eval"],
        "sql_dpo_sharegpt_train.json": sql["sharegpt"][:SHAREGPT_EVAL_FROM],
        "sql_dpo_sharegpt_eval.json": sql["sharegpt"][SHAREGPT_EVAL_FROM:],
        "helpful_pref_train.json": helpful_train,
        "helpful_pref_eval.json": helpful_eval,
        "dataset_info.json": REGISTRY,
    }
    for name, data in outputs.items():
        write_json(HERE / name, data)
        print(f"{name}: {len(data)} {'entries' if name == 'dataset_info.json' else 'rows'}")


if __name__ == "__main__":
    main()
