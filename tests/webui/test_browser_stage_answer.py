"""A late answer to a stage change cannot undo what the user did meanwhile, in a real browser.

On a loaded machine the answer to a stage change (the dataset pickers refiltered, the parent run
defaulted, the stage's options shown) can reach the page after the user has picked another dataset
or another stage. Here the answer is made late on purpose, and deterministically: the browser's
request for it is held (Playwright routes the page's queue join) until the user has acted, then let
go. The answer must not put back the dataset it replaced, and an answer to a stage the form no
longer shows must be dropped (webui/form_answers.py)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.helpers import make_weight_run
from tests.webui import browser as ui

DATASET = "data.dataset"


@pytest.fixture(scope="module", autouse=True)
def finished_run(app, tiny_model):
    """A finished LoRA run, made before the page loads (so the Chat tab's pickers offer it from the start)."""
    return make_weight_run(app["saves"] / "runs", tiny_model, seed=7)


def start_from_sft_on_sql_sft(page) -> None:
    ui.open_tab(page, "Train")
    ui.pick_stage(page, "sft")
    ui.pick_field(page, DATASET, "sql_sft")


def asking_for(stage: str):
    """Whether a stage change's inputs ask about ``stage`` (the stage is its first input)."""
    return lambda data: data[:1] == [stage]


def pick_stage_answered_late(page, stage: str) -> None:
    """Pick ``stage`` and wait until the page has asked for its answer (which answer_held holds)."""
    event = ui.event_id(page, "stage_changed")
    with page.expect_request(lambda request: ui.joins(request, event, asking_for(stage))):
        ui.pick_field(page, "stage", stage)


def dataset_shown(page) -> str:
    return ui.field(page, DATASET).locator("input").input_value()


def test_a_stage_change_replaces_a_dataset_that_does_not_fit(page):
    start_from_sft_on_sql_sft(page)
    ui.pick_stage(page, "dpo")  # sql_sft has no chosen/rejected pairs: DPO cannot train on it
    ui.wait_for(lambda: dataset_shown(page) == "sql_dpo", 30, "the first preference dataset in its place")
    assert "sql_sft" not in ui.options(page, ui.field(page, DATASET))


def test_a_late_answer_keeps_the_dataset_picked_while_it_travelled(page):
    start_from_sft_on_sql_sft(page)
    with ui.answer_held(page, ui.event_id(page, "stage_changed"), asking_for("dpo")) as held:
        pick_stage_answered_late(page, "dpo")
        ui.pick_field(page, DATASET, "penn_pref")  # the user's choice, made before the answer arrives
        assert held, "the answer was not held back"
    expect(page.locator("#wb-section-dpo")).to_be_visible()  # the answer has arrived and was applied
    options = ui.options(page, ui.field(page, DATASET))
    assert "sql_sft" not in options and "penn_pref" in options  # its choices: preference datasets
    assert dataset_shown(page) == "penn_pref"  # not sql_dpo, the answer's replacement for sql_sft


def test_an_answer_for_a_stage_the_form_no_longer_shows_is_dropped(page):
    start_from_sft_on_sql_sft(page)
    with ui.answer_held(page, ui.event_id(page, "stage_changed"), asking_for("dpo")) as held:
        pick_stage_answered_late(page, "dpo")
        ui.pick_field(page, "stage", "ppo")  # asked while DPO's answer travels: answered after it
        assert held, "the answer was not held back"
    expect(page.locator("#wb-section-ppo")).to_be_visible()
    expect(page.locator("#wb-section-dpo")).to_be_hidden()
    # DPO's answer would have replaced sql_sft; PPO takes prompts from any dataset, so it stays
    assert dataset_shown(page) == "sql_sft"


def test_a_late_answer_to_opening_a_tab_keeps_what_was_picked_meanwhile(page, app, tiny_model, finished_run):
    """Opening a tab re-reads its lists from disk. Its answer, held until the user has picked a column,
    must leave the pick alone (a value is sent only where the one shown no longer fits); a run finished
    after the page loaded shows that the answer has arrived (it is in the lists only from the answer)."""
    columns = page.locator("#wb-chat-columns")
    ui.open_tab(page, "Train")  # opening Chat below is a change of tab, whatever an earlier test left open
    newer = make_weight_run(app["saves"] / "runs", tiny_model, seed=8)  # after the page loaded
    with ui.answer_held(page, ui.event_id(page, "chat_opened")) as held:
        ui.open_tab(page, "Chat")
        ui.wait_for(lambda: held, 60, "the tab's request")
        picked = ui.option_containing(page, columns, finished_run.name)  # offered since the page loaded
        ui.pick(page, columns, picked)
    ui.option_containing(page, columns, newer.name)  # the answer has arrived and was applied
    assert ui.shows(columns, picked), columns.inner_text()
