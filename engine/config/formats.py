"""The format table: how a dataset_info.json entry says its rows are laid out (its ``formatting``),
beside the stage table (stages.py) that says what each stage trains on. The registry
(engine.data.registry), the row readers (engine.data.rows), layout detection (engine.data.layouts)
and the Datasets tab read the names and defaults from here.

    alpaca     LLaMA-Factory's instruction layout: instruction / input / output (+ system, history);
               ranking data: output = [chosen, rejected], or chosen and rejected columns
    sharegpt   LLaMA-Factory's conversations: a list of messages (+ chosen / rejected messages)
    trl        TRL's own dataset types, every column named: prompt / chosen / rejected (implicit prompt,
               message lists, HH transcripts), prompt / completion, unpaired rows with a label, text.
               LLaMA-Factory cannot express them; only the workbench reads "trl" entries.

The Datasets tab also offers prompt-chosen-rejected, which is stored as alpaca + ranking with chosen
and rejected columns (LLaMA-Factory's own preference layout).
"""

from __future__ import annotations

from dataclasses import dataclass

ALPACA, SHAREGPT, TRL = "alpaca", "sharegpt", "trl"
PROMPT_CHOSEN_REJECTED = "prompt-chosen-rejected"  # offered by the Datasets tab, stored as alpaca + ranking

# LLaMA-Factory's message keys and role names (sharegpt's default), and TRL's / OpenAI's (trl's default)
LLAMAFACTORY_TAGS = {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                     "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}
OPENAI_TAGS = {**LLAMAFACTORY_TAGS, "role_tag": "role", "content_tag": "content", "user_tag": "user",
               "assistant_tag": "assistant", "observation_tag": "tool"}


@dataclass(frozen=True)
class Format:
    name: str
    columns: dict[str, str]  # role -> default column; a row that lacks a column simply skips the role
    tags: dict[str, str]  # default message keys and role names
    llamafactory: bool  # LLaMA-Factory reads entries of this formatting as they are


FORMATS = {
    ALPACA: Format(ALPACA, {"prompt": "instruction", "query": "input", "response": "output", "system": "system",
                            "history": "history"}, LLAMAFACTORY_TAGS, True),
    SHAREGPT: Format(SHAREGPT, {"messages": "conversations", "system": "system", "tools": "tools"},
                     LLAMAFACTORY_TAGS, True),
    TRL: Format(TRL, {}, OPENAI_TAGS, False),  # every column named
}
DEFAULT_FORMAT = ALPACA  # an entry without "formatting" (LLaMA-Factory's default)
OFFERED = (ALPACA, SHAREGPT, PROMPT_CHOSEN_REJECTED, TRL)  # the Datasets tab's choices


def stored(offered: str, ranking: bool) -> tuple[str, bool]:
    """(formatting, ranking) an entry is written with for a choice of the Datasets tab."""
    if offered == PROMPT_CHOSEN_REJECTED:
        return ALPACA, True
    return offered, ranking
