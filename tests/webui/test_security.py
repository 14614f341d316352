"""The launched app's real HTTP API, called as any client could call it (raw requests, no browser):
logins are enforced, browser-given paths stay inside the allowed folders, the destructive
endpoints need their first step in the same session, and uploads are capped."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers import make_run, serve_in_process
from webui import access, app

LOGIN = ("ada", "s3cret-pw")
MAX_UPLOAD = 2**20
SECRET = "TOP-SECRET-ROW"


@dataclass
class Server:
    url: str
    saves: Path
    allowed: Path   # the one folder allowed besides data/ and the saves (WORKBENCH_ALLOWED_DIRS)
    outside: Path   # a folder the UI must not touch


@pytest.fixture
def server(tmp_path, monkeypatch) -> Server:
    """The app on a free loopback port with one login and a 1 MB upload cap, over a fresh saves folder."""
    found = Server("", *(tmp_path / name for name in ("saves", "allowed", "outside")))
    for folder in (found.saves, found.allowed, found.outside):
        folder.mkdir()
    monkeypatch.setenv("WORKBENCH_SAVES", str(found.saves))
    monkeypatch.setenv(access.ENV_DIRS, str(found.allowed))
    demo = app.build_app(found.saves)
    found.url = serve_in_process(demo, auth=[LOGIN], max_file_size=MAX_UPLOAD)
    try:
        yield found
    finally:
        demo.close()


class Api:
    """A client of the app's HTTP API; calls are queue joins by fn_index, as the page makes them."""

    def __init__(self, url: str, login: tuple[str, str] | None = LOGIN):
        self.http = httpx.Client(base_url=url, timeout=30)
        self.session = uuid.uuid4().hex  # one browser tab: gr.State values live per session
        if login:
            response = self.http.post("/login", data={"username": login[0], "password": login[1]})
            assert response.status_code == 200, response.text
        self._config = None

    def config(self) -> dict:
        if self._config is None:
            self._config = self.http.get("/config").raise_for_status().json()
        return self._config

    def endpoint(self, name: str) -> dict:
        return next(d for d in self.config()["dependencies"] if d.get("api_name") == name)

    def inputs(self, name: str, by_label: dict, state=None) -> list:
        """Every input of an endpoint: its default, or by_label's value for its label; ``state`` for
        each gr.State input (a client can send anything there: the server must use its own)."""
        components = {c["id"]: c for c in self.config()["components"]}
        values = []
        for i in self.endpoint(name)["inputs"]:
            c = components[i]
            values.append(state if c["type"] == "state" else by_label.get(c["props"].get("label"),
                                                                            c["props"].get("value")))
        return values

    def call(self, name: str, by_label: dict | None = None, state=None) -> tuple[dict, list[str]]:
        """({output label: value}, warnings shown) of one call in this session."""
        dep = self.endpoint(name)
        body = {"data": self.inputs(name, by_label or {}, state), "fn_index": dep["id"],
                "session_hash": self.session, "event_data": None, "trigger_id": None}
        event = self.http.post("/gradio_api/queue/join", json=body).raise_for_status().json()["event_id"]
        warnings = []
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                msg = json.loads(line[5:]) if line.startswith("data:") else {}
                if msg.get("msg") == "log":
                    warnings.append(msg["log"])
                if msg.get("msg") == "process_completed" and msg.get("event_id") == event:
                    assert msg["success"], msg
                    return self._by_label(dep, msg["output"]["data"]), warnings
        raise AssertionError(f"{name}: no answer")

    def _by_label(self, dep: dict, data: list) -> dict:
        components = {c["id"]: c for c in self.config()["components"]}
        out = {}
        for i, value in zip(dep["outputs"], data):
            label = components[i]["props"].get("label") or f"#{i}"
            out[label] = value.get("value") if isinstance(value, dict) and "__type__" in value else value
        return out

    def upload(self, path: Path) -> dict:
        """A gr.File value for a file uploaded as the page uploads it."""
        with open(path, "rb") as fh:
            [stored] = self.http.post("/gradio_api/upload", files={"files": (path.name, fh)}).raise_for_status().json()
        return {"path": stored, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def write_pairs(path: Path, prompt: str = "What is 2+2?") -> Path:
    path.write_text(json.dumps({"prompt": prompt, "chosen": "4.", "rejected": "5."}) + "\n", encoding="utf-8")
    return path


def markdown(outputs: dict) -> str:
    """Every text an endpoint answered, joined: what the page would show."""
    return "\n".join(str(v) for v in outputs.values())


ON_DISK = "A file on this machine"
ROLES = {"prompt column": "prompt", "chosen column": "chosen", "rejected column": "rejected",
         "formatting": "prompt-chosen-rejected", "ranking": True}


# ---- (b) logins ---------------------------------------------------------------------------------


def test_without_a_login_nothing_answers_and_with_one_everything_does(server):
    anonymous = Api(server.url, login=None)
    join = {"data": [], "fn_index": 0, "session_hash": "x", "event_data": None, "trigger_id": None}
    refused = [anonymous.http.get("/config"), anonymous.http.get("/gradio_api/info"),
               anonymous.http.post("/gradio_api/queue/join", json=join),
               anonymous.http.get("/gradio_api/queue/data", params={"session_hash": "x"}),
               anonymous.http.post("/gradio_api/upload", files={"files": ("a.jsonl", b"{}\n")})]
    assert [r.status_code for r in refused] == [401] * len(refused)
    make_run("sft", "completed")
    # the login page, not the app's layout; Gradio embeds its API description there, which names no run
    login_page = anonymous.http.get("/").text
    assert '"auth_required":true' in login_page and "gradio_api_info" in login_page
    assert str(server.saves) not in login_page and "-sft-test" not in login_page
    assert anonymous.http.post("/login", data={"username": LOGIN[0], "password": "wrong"}).status_code >= 400
    api = Api(server.url)
    assert api.http.get("/gradio_api/info").status_code == 200 and '"auth_required"' not in api.http.get("/").text
    outputs, _ = api.call("refresh_runs")
    assert len(outputs["runs"]["data"]) == 1


# ---- (c) paths outside the allowed folders --------------------------------------------------------


def test_a_file_outside_cannot_be_read_and_one_inside_can(server):
    secret = write_pairs(server.outside / "secret.jsonl", SECRET)
    api = Api(server.url)
    for path, folder in ((str(secret), server.allowed), ("../outside/secret.jsonl", server.allowed),
                         ("secret.jsonl", server.outside)):
        loaded, _ = api.call("load_dataset_file", {"source": ON_DISK, "data file": path, "dataset_dir": str(folder)})
        assert "outside the folders the web UI may use" in markdown(loaded) and "--allow-dir" in markdown(loaded)
        assert path in markdown(loaded) or str(folder) in markdown(loaded)  # the refused path is named
        checked, _ = api.call("check_dataset", {"dataset_dir": str(server.allowed)})  # on what the session holds
        assert SECRET not in markdown(checked) and SECRET not in markdown(loaded)
    inside = write_pairs(server.allowed / "pairs.jsonl")
    loaded, _ = api.call("load_dataset_file", {"source": ON_DISK, "data file": str(inside),
                                               "dataset_dir": str(server.allowed)})
    assert "Read **pairs.jsonl**: 1 rows" in markdown(loaded)
    checked, _ = api.call("check_dataset", {"dataset_dir": str(server.allowed), **ROLES})
    assert "1 row, no errors" in markdown(checked)  # every row of the file was read and checked


def test_no_folder_is_created_or_listed_outside(server):
    api = Api(server.url)
    target = server.outside / "created-by-a-client"
    _, warnings = api.call("refresh_datasets", {"dataset_dir": str(target)})
    assert any(str(target) in w and "--allow-dir" in w for w in warnings)
    upload = api.upload(write_pairs(server.saves / "upload.jsonl"))
    loaded, _ = api.call("load_dataset_file", {"source": "Upload a file", "data file: json, jsonl, csv or parquet":
                                               upload, "dataset_dir": str(server.allowed)})
    assert "Read **upload.jsonl**" in markdown(loaded)  # Gradio's upload folder is accepted
    registered, _ = api.call("register_dataset", {"dataset_dir": str(target), "name": "stolen", **ROLES})
    assert "Not registered" in markdown(registered) and str(target) in markdown(registered)
    assert not target.exists() and not list(server.outside.iterdir())
    registered, _ = api.call("register_dataset", {"dataset_dir": str(server.allowed), "name": "mine", **ROLES})
    assert "Registered **mine**" in markdown(registered)
    assert "mine" in json.loads((server.allowed / "dataset_info.json").read_text())


# ---- (d) confirmations --------------------------------------------------------------------------


def test_confirm_delete_called_directly_deletes_nothing(server):
    run = make_run("sft", "completed")
    attacker = Api(server.url)
    attacker.call("refresh_runs")  # the picker's choices, as a page load fills them
    outputs, _ = attacker.call("confirm_delete", {"run to view or delete": run.name}, state=run.name)
    assert "nothing to confirm" in markdown(outputs).lower() and run.path.exists()
    user = Api(server.url)  # the page's two steps, in one session
    user.call("refresh_runs")
    user.call("ask_delete", {"run to view or delete": run.name})
    outputs, _ = user.call("confirm_delete", {"run to view or delete": run.name})
    assert f"Deleted {run.name}." in markdown(outputs) and not run.path.exists()


def test_confirm_remove_called_directly_removes_nothing(server):
    registry = server.allowed / "dataset_info.json"
    registry.write_text(json.dumps({"toy": {"file_name": "toy.json"}}), encoding="utf-8")
    picked = {"dataset_dir": str(server.allowed), "registered dataset: check, preview, rename or remove": "toy"}
    attacker = Api(server.url)
    attacker.call("refresh_datasets", {"dataset_dir": str(server.allowed)})  # the picker's choices
    outputs, _ = attacker.call("confirm_remove", picked, state={"folder": str(server.allowed), "name": "toy"})
    assert "nothing to confirm" in markdown(outputs).lower() and "toy" in json.loads(registry.read_text())
    user = Api(server.url)
    user.call("refresh_datasets", {"dataset_dir": str(server.allowed)})
    user.call("ask_remove", picked)
    outputs, _ = user.call("confirm_remove", picked)
    assert "Removed **toy**" in markdown(outputs) and json.loads(registry.read_text()) == {}


# ---- (e) uploads --------------------------------------------------------------------------------


def test_an_upload_over_the_cap_is_refused(server):
    api = Api(server.url)
    too_big = api.http.post("/gradio_api/upload", files={"files": ("big.jsonl", b"x" * (MAX_UPLOAD + 1))})
    assert too_big.status_code == 413
    assert api.http.post("/gradio_api/upload", files={"files": ("ok.jsonl", b"x" * 1000)}).status_code == 200
