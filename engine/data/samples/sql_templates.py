"""Single-table request templates for the SQL sample data, and the conditions they draw.

Each ``t_*`` template draws one request about one table from the random generator it is given
and returns ``(tables, request, comment, query)``: the tables the prompt must describe, the
English request, the comment line of the preferred answer and the query AST (see
``sql_schema.query``), or ``None`` when the draw made no sense (the caller then draws again).
The ``*_cond`` helpers draw one WHERE condition with its English phrase. The order of the
random draws in every function is part of the output: changing it changes the shipped data.
"""

from __future__ import annotations

import random

from engine.data.samples.sql_schema import (
    FUNC_ALIAS,
    FUNC_WORD,
    SINGLE_TABLES,
    TABLES,
    VERBS,
    and_list,
    cap,
    label,
    query,
)


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
