"""webui.samples_view: the sample answers of a run, step 0 beside a later step, with the alignment
accuracy of the probes its dataset declares (a probe declared on a newly registered dataset too)."""

from __future__ import annotations

import json
import shutil

from engine.config import from_dict
from engine.data.registry import register_dataset, set_probe
from engine.runs.folder import create_run
from tests.helpers import DATA, GOOD, LOOP, PARAGRAPH, tiny_config
from webui import samples_view


def test_a_probe_declared_on_a_new_dataset_drives_the_panels_alignment_accuracy(runs_env, tmp_path):
    folder = tmp_path / "data"
    shutil.copytree(DATA, folder)
    (tmp_path / "howto.json").write_text(json.dumps([{"instruction": "How do I bake a cake?",
                                                      "output": [GOOD, PARAGRAPH]}]))
    register_dataset(folder, "howto", {"ranking": True}, copy_from=tmp_path / "howto.json")
    set_probe(folder, "howto", "numbered", {"starts_with": "1."})
    run = create_run(from_dict(tiny_config("dpo", data={"dataset": "howto", "dataset_dir": str(folder)})))
    run.append_samples([{"step": s, "prompt": "How do I bake a cake?", "answer": a, "tokens": 9, "ended": True}
                        for s, a in ((0, PARAGRAPH), (5, GOOD), (10, LOOP))])
    assert list(samples_view.run_probes(run)) == ["numbered"]
    at_5 = samples_view.show_run(run.name, 5)
    assert "<b>numbered</b> 0% → 100%" in at_5 and "step 5" in at_5
    at_10 = samples_view.show_run(run.name, None)  # the loop starts with "1." but is degenerate: not aligned
    assert "<b>numbered</b> 0% → 0%" in at_10 and ">loops<" in at_10


def test_no_samples_yet_and_the_slider_range():
    assert "No sample answers yet" in samples_view.samples_html([])
    records = [{"step": s, "prompt": "p", "answer": "a", "tokens": 1, "ended": True} for s in (0, 3, 6)]
    assert samples_view.slider_update(records) == {"minimum": 0, "maximum": 6, "value": 6}
    assert samples_view.at_or_before(records, 5) == 3 and samples_view.at_or_before(records, None) == 6
