"""webui.serving and `python -m webui`'s options: logins, the refusal to serve a non-loopback address
without one, and the upload cap (launch is replaced, so nothing binds a port)."""

from __future__ import annotations

import pytest

from webui import access, app, serving


def test_logins_from_options_file_and_environment(tmp_path):
    file = tmp_path / "logins.txt"
    file.write_text("# team\nbob:pa:ss\n\n  # old: carol:x\ncarol:c4rol\n", encoding="utf-8")
    found = serving.logins(["ada:s3cret"], str(file), "dan:d1, eve:e2,")
    assert found == [("ada", "s3cret"), ("bob", "pa:ss"), ("carol", "c4rol"), ("dan", "d1"), ("eve", "e2")]
    assert serving.logins(None, None, None) == [] and serving.logins([], None, "") == []


@pytest.mark.parametrize("entry", ["no-colon-secret", ":nouser", "user:", "  :  "])
def test_a_malformed_login_names_its_place_never_its_text(tmp_path, entry):
    with pytest.raises(serving.LoginError) as refused:
        serving.logins([entry], None, None)
    assert "--auth #1" in str(refused.value) and "secret" not in str(refused.value)
    (tmp_path / "f").write_text(f"ok:fine\n{entry}\n", encoding="utf-8")
    with pytest.raises(serving.LoginError, match="line 2"):
        serving.read_auth_file(tmp_path / "f")
    with pytest.raises(serving.LoginError, match="WORKBENCH_AUTH entry #2"):
        serving.logins(None, None, f"ok:fine,{entry}")


def test_loopback_addresses():
    assert all(serving.is_loopback(h) for h in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"))
    assert not any(serving.is_loopback(h) for h in ("0.0.0.0", "::", "", "192.168.1.5", "example.org", "10.0.0.1"))


@pytest.fixture
def launched(monkeypatch) -> dict:
    """main() up to the launch: what it would build and launch with (nothing is served)."""
    seen: dict = {}
    monkeypatch.setattr(app, "build_app", lambda saves=None: "demo")
    monkeypatch.setattr(app, "launch", lambda demo, host, port, **kwargs: seen.update(host=host, port=port, **kwargs))
    monkeypatch.setattr(access, "_started_with", [])
    for name in (serving.ENV_AUTH, serving.ENV_MAX_UPLOAD):
        monkeypatch.delenv(name, raising=False)
    return seen


def test_a_public_address_without_a_login_is_refused(launched, capsys):
    with pytest.raises(SystemExit) as stopped:
        app.main(["--host", "0.0.0.0"])
    assert stopped.value.code == 2 and launched == {}
    err = capsys.readouterr().err
    assert "0.0.0.0" in err and all(option in err for option in ("--auth", "--auth-file", "WORKBENCH_AUTH", "--insecure"))


def test_insecure_serves_with_a_loud_warning(launched, capsys):
    app.main(["--host", "0.0.0.0", "--insecure"])
    assert launched["host"] == "0.0.0.0" and launched["auth"] is None
    assert "WARNING" in capsys.readouterr().err


def test_loopback_needs_no_login(launched, capsys):
    app.main([])
    assert launched["host"] == "127.0.0.1" and launched["auth"] is None
    assert capsys.readouterr().err == ""


def test_logins_reach_launch_and_no_password_is_printed(launched, capsys, monkeypatch, tmp_path):
    file = tmp_path / "logins"
    file.write_text("bob:b0b-secret\n", encoding="utf-8")
    monkeypatch.setenv(serving.ENV_AUTH, "carol:c4rol-secret")
    app.main(["--host", "0.0.0.0", "--auth", "ada:ada-secret", "--auth-file", str(file)])
    assert launched["auth"] == [("ada", "ada-secret"), ("bob", "b0b-secret"), ("carol", "c4rol-secret")]
    out = capsys.readouterr()
    assert "secret" not in out.out + out.err


def test_a_bad_login_stops_start_up_without_echoing_it(launched, capsys):
    with pytest.raises(SystemExit) as stopped:
        app.main(["--auth", "just-a-password"])
    assert stopped.value.code == 2 and launched == {}
    assert "just-a-password" not in capsys.readouterr().err


def test_upload_cap_and_allowed_folders(launched, monkeypatch, tmp_path):
    app.main([])
    assert launched["max_file_size"] == 512 * 2**20
    monkeypatch.setenv(serving.ENV_MAX_UPLOAD, "7")
    app.main(["--allow-dir", str(tmp_path)])
    assert launched["max_file_size"] == 7 * 2**20 and tmp_path.resolve() in access.allowed_roots()
    app.main(["--max-upload-mb", "3"])  # the option wins over the environment
    assert launched["max_file_size"] == 3 * 2**20
    for bad in (["--max-upload-mb", "0"], ["--max-upload-mb", "x"]):
        with pytest.raises(SystemExit):
            app.main(bad)


def test_the_api_description_names_no_value():
    """Gradio embeds the API description even in the login page: no choices, defaults or examples."""
    described = {"named_endpoints": {"/preview": {"parameters": [{
        "label": "init_from", "parameter_has_default": True, "parameter_default": "/srv/saves/runs/r1",
        "type": {"type": "string", "enum": ["", "/srv/saves/runs/r1"]},
        "python_type": {"type": "Literal['', '/srv/saves/runs/r1']", "description": ""},
        "component": "Dropdown", "example_input": "/srv/saves/runs/r1"}]}}}
    parameter = serving.without_values(described)["named_endpoints"]["/preview"]["parameters"][0]
    assert "/srv" not in repr(parameter)
    assert parameter["type"] == {"type": "string"} and parameter["python_type"]["type"] == "str"
    assert parameter["label"] == "init_from" and parameter["component"] == "Dropdown"
