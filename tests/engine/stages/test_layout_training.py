"""Training on users' own layouts: the seed-000 preference file registered from the CLI trains DPO,
unpaired KTO rows train the KTO loss without pairing, plain text trains SFT, and a stage that
cannot use a dataset's rows says so before anything loads."""

from __future__ import annotations

import pytest

from engine.cli import main
from engine.config import from_dict
from engine.data.registry import DatasetError
from engine.runs.folder import create_run
from engine.train import run as train_in_process
from tests.helpers import LAYOUT_FIXTURES, tiny_config


@pytest.fixture(scope="module")
def folder(tmp_path_factory, tiny_model):
    folder = tmp_path_factory.mktemp("data")
    for name, file in (("seed_dpo", "lf_alpaca_ranking_seed000.jsonl"), ("kto_rows", "trl_unpaired_kto.jsonl"),
                       ("notes", "plain_text.jsonl"), ("hh", "anthropic_hh.jsonl")):
        assert main(["data", "register", str(LAYOUT_FIXTURES / file), "--name", name, "--dataset-dir", str(folder),
                     "--model", str(tiny_model)]) == 0
    return folder


def train(folder, stage: str, dataset: str, **sections):
    cfg = tiny_config(stage, data={"dataset": dataset, "dataset_dir": str(folder), "val_size": 0, "cutoff_len": 256},
                      training={"max_steps": 2, "per_device_train_batch_size": 2}, samples={"count": 0}, **sections)
    run_dir = create_run(from_dict(cfg))
    return run_dir, train_in_process(run_dir)


def test_the_seed_000_layout_trains_dpo(folder):
    run_dir, state = train(folder, "dpo", "seed_dpo")
    assert state == "completed", run_dir.status()
    logged = [m for m in run_dir.metrics() if "loss" in m]
    assert [m["step"] for m in logged] == [1, 2] and all("rewards/margins" in m for m in logged)


def test_hh_transcripts_train_dpo(folder):
    run_dir, state = train(folder, "dpo", "hh")
    assert state == "completed", run_dir.status()


def test_unpaired_rows_train_the_kto_loss_without_pairing(folder):
    run_dir, state = train(folder, "dpo", "kto_rows", dpo={"loss_type": "kto"})
    assert state == "completed", run_dir.status()
    logged = [m for m in run_dir.metrics() if "loss" in m]
    assert logged and all("rewards/chosen" in m and "rewards/rejected" in m for m in logged)


def test_plain_text_trains_sft(folder):
    run_dir, state = train(folder, "sft", "notes")
    assert state == "completed", run_dir.status()
    assert run_dir.adapter_dir.is_dir()


@pytest.mark.parametrize("stage, dataset, sections, words", [
    ("dpo", "kto_rows", {}, "only dpo.loss_type kto trains on (not sigmoid)"),
    ("rm", "kto_rows", {}, "and rm trains on chosen/rejected pairs"),
    ("sft", "kto_rows", {}, "unpaired rows"),
    ("dpo", "notes", {}, "plain text (no prompts), and dpo trains on chosen/rejected pairs (\"ranking\": true) or unpaired rows"),
])
def test_a_stage_refuses_rows_it_cannot_train_on(folder, stage, dataset, sections, words):
    from engine.data.rows import load_splits

    cfg = from_dict(tiny_config(stage, data={"dataset": dataset, "dataset_dir": str(folder)}, **sections))
    with pytest.raises(DatasetError, match=r"data.dataset: dataset .* cannot train") as caught:
        load_splits(cfg, preference=stage != "sft")
    assert words in str(caught.value)
