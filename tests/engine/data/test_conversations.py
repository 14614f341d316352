"""Tests for engine.data.conversations: message lists, shared prompts and HH transcripts."""

from __future__ import annotations

import pytest

from engine.config.formats import LLAMAFACTORY_TAGS, OPENAI_TAGS
from engine.data.conversations import (
    answer,
    parse_transcript,
    read_messages,
    split_shared_prompt,
    split_shared_text,
)
from engine.data.registry import DatasetError


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_read_messages_maps_keys_and_roles_and_names_the_bad_message():
    raw = [{"from": "system", "value": "s"}, {"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    assert read_messages(raw, LLAMAFACTORY_TAGS, "column 'c'") == [
        {"role": "system", "content": "s"}, user("q"), assistant("a")]
    with pytest.raises(DatasetError, match=r"column 'c' message 3: expected a user turn"):
        read_messages([user("q"), assistant("a"), assistant("b")], OPENAI_TAGS, "column 'c'")
    with pytest.raises(DatasetError, match=r"message 1: role 'bot' is not one of"):
        read_messages([{"role": "bot", "content": "x"}], OPENAI_TAGS, "column 'c'")


def test_answers_come_as_strings_or_message_objects():
    for value in ("a", {"content": "a"}, {"role": "assistant", "content": "a"}, {"from": "gpt", "value": "a"},
                  [{"role": "assistant", "content": "a"}]):
        assert answer(value, "x") == "a"
    with pytest.raises(DatasetError, match="empty answer in x"):
        answer({"content": " "}, "x")


def test_the_shared_messages_up_to_the_last_user_turn_are_the_prompt():
    chosen = [user("hi"), assistant("hello"), user("q"), assistant("good")]
    rejected = [user("hi"), assistant("hello"), user("q"), assistant("bad")]
    assert split_shared_prompt(chosen, rejected, "row") == (chosen[:3], "good", "bad")
    same = [user("q"), assistant("a")]
    assert split_shared_prompt(same, same, "row") == ([user("q")], "a", "a")  # identical: caught later
    with pytest.raises(DatasetError, match="differ before their last answer"):
        split_shared_prompt([user("q"), assistant("a"), user("more"), assistant("x")], [user("q"), assistant("b")], "row")
    with pytest.raises(DatasetError, match="share no user turn"):
        split_shared_prompt([user("q1"), assistant("a")], [user("q2"), assistant("b")], "row")


def test_hh_transcripts_become_messages():
    text = "\n\nHuman: What is 2+2?\n\nAssistant: 4\n\nHuman: And 3+3?\n\nAssistant: 6"
    assert parse_transcript(text, "x") == [user("What is 2+2?"), assistant("4"), user("And 3+3?"), assistant("6")]
    with pytest.raises(DatasetError, match="x is not a transcript"):
        parse_transcript("Just a sentence.", "x")


def test_strings_split_at_the_last_shared_whitespace():
    assert split_shared_text("Q: 2+2? A: Four.", "Q: 2+2? A: Five.") == ("Q: 2+2? A:", "Four.", "Five.")
