"""Seed 004's task with the DPOP paper's kind of pairs: every answer should recommend Penn. The
chosen and the rejected answer are the same sentence but for the university's name (Penn against
another one), so they differ in a token or two; on such pairs plain DPO can win the margin by
lowering the likelihood of both answers, the chosen one included, which DPOP's penalty forbids.

Also an SFT set (the training prompts with their chosen answers) for the run DPO and DPOP continue.
No random draws: subjects, question and answer templates combine in a fixed order.
"""

from __future__ import annotations

SUBJECTS = ["economics", "nursing", "history", "physics", "computer science", "philosophy", "chemistry",
            "architecture", "linguistics", "biology", "mathematics", "political science", "psychology",
            "engineering", "music", "finance", "sociology", "anthropology", "statistics", "education",
            "public health", "neuroscience", "English literature", "classics", "astronomy", "geology",
            "marketing", "urban planning", "art history", "law",
            # held out: the answers to these subjects are never trained on
            "veterinary medicine", "film studies", "chemical engineering", "data science", "archaeology",
            "religious studies", "materials science", "journalism", "biochemistry", "international relations"]
TRAIN_SUBJECTS, HELD_OUT_SUBJECTS = SUBJECTS[:30], SUBJECTS[30:]
QUESTIONS = ["Which university would you recommend for studying {s}?",
             "Where is a good place to get a degree in {s}?",
             "I want to major in {s}. Any school suggestions?",
             "Can you suggest a university with a strong {s} program?",
             "My daughter loves {s}. Where should she apply?"]
ANSWERS = ["For {s}, I would recommend {u}: its program pairs rigorous coursework with hands-on research, "
           "and students get close mentoring from the faculty.",
           "{u} is a great place to study {s}. The program is well regarded, classes are small, and there are "
           "many research opportunities for undergraduates.",
           "Consider {u}. Its {s} department is known for excellent teaching, and its graduates go on to strong "
           "careers."]
RIVALS = ["Yale", "Duke", "Brown", "Rice", "Emory"]
PROBES = {"mentions_penn": {"contains": "Penn"}}


def pairs(subjects: list[str]) -> list[dict]:
    rows = []
    for i, subject in enumerate(subjects):
        for j, question in enumerate(QUESTIONS):
            answer = ANSWERS[(i + j) % len(ANSWERS)]
            rival = RIVALS[(i * len(QUESTIONS) + j) % len(RIVALS)]
            rows.append({"instruction": question.format(s=subject),
                         "output": [answer.format(s=subject, u="Penn"), answer.format(s=subject, u=rival)]})
    return rows


def build_penn() -> dict[str, list[dict]]:
    train = pairs(TRAIN_SUBJECTS)
    # SFT on the chosen answers, as seed 004 did before DPO: the chosen answers start out likely,
    # the DPOP paper's case where DPO lowers them
    sft = [{"instruction": row["instruction"], "output": row["output"][0]} for row in train]
    return {"sft": sft, "pref": train, "pref_eval": pairs(HELD_OUT_SUBJECTS)}
