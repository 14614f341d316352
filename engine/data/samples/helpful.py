"""The helpfulness preference datasets: rows from the fact table plus computed arithmetic rows.

``fact_groups`` turns each hand-written fact (``helpful_facts``) into a group of rows, one per
paraphrased question, whose chosen answer is detailed and structured and whose rejected answer
is curt. ``computed_rows`` draws unit-conversion, percentage and tip questions whose answers
are computed, so they are correct by construction. ``build_helpful`` splits whole groups
between train and eval, so a paraphrase of an eval question never appears in train.
"""

from __future__ import annotations

import random

from engine.data.samples.helpful_facts import FACTS, TEMPERATURES
from engine.data.samples.sql_schema import cap

HELPFUL_TRAIN, HELPFUL_EVAL = 150, 30


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
