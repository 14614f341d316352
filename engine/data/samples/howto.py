"""How-to preferences that tempt DPO into degenerating: the chosen answer gives the steps as a
numbered list, the rejected one the very same steps as one paragraph. Only the numbering differs,
so a policy can win the margin by writing "1." over and over; at a high learning rate it does
(`1. 1. 1. ...`), which the sample answers' loop alarm catches while every metric looks ideal.

Built from the helpfulness fact table (engine.data.samples.helpful_facts), no random draws:
20 facts for training, 8 others held out.
"""

from __future__ import annotations

from engine.data.samples.helpful_facts import FACTS

TRAIN = FACTS[0:60:3]  # 20 facts
HELD_OUT = FACTS[1:73:9]  # 8 others
PROBES = {"numbered": {"starts_with": "1.", "min_lines": 2}}


def pair(fact) -> dict:
    questions, _lead, steps, _tip, _curt = fact
    return {"instruction": questions[0],
            "output": ["\n".join(f"{i}. {step}" for i, step in enumerate(steps, 1)), " ".join(steps)]}


def build_howto() -> tuple[list[dict], list[dict]]:
    return [pair(f) for f in TRAIN], [pair(f) for f in HELD_OUT]
