"""up, rollback, reload and sync on the fake engine (lab/engine/fake.py): the
same code paths as against Docker, in seconds, with no engine. The docker
suite proves the same against the real thing."""

from __future__ import annotations

import pytest

from helpers import free_port, ok, run
from lab.core import layout
from lab.core.errors import ConfigError, LabError, RuntimeFailure
from lab.engine import runtime
from lab.engine.fake import FakeEngine
from lab.engine.seam import EngineError

IMAGE = "lab-nginx:fake"


def answers(host: str, port: int, ca_file) -> str:
    """A TLS probe that says every published port answers."""
    return "TLSv1.3"


def never(host: str, port: int, ca_file) -> str:
    raise ConnectionRefusedError("nothing listens")


@pytest.fixture
def lab(lab_params):
    """A rendered lab (certificates, configuration, compose file) for the fake image."""
    params = lab_params()
    ok(run("render", *params.args("--image", IMAGE, "--tls-port", params.tls_port, "--mtls-port", params.mtls_port)))
    return params


def _up(lab, engine, probe=answers, timeout=2.0):
    return runtime.up(lab.dir / layout.COMPOSE_FILE, lab.dir / "certs" / layout.SERVER_CA_CRT, timeout=timeout,
                      engine=engine, probe=probe)


def _made(engine: FakeEngine, lab) -> tuple[list[str], list[str]]:
    return ([c.name for c in runtime.lab_containers(engine, lab.name)],
            [n.name for n in runtime.lab_networks(engine, lab.name)])


def test_up_makes_a_network_and_two_labelled_running_servers(lab):
    engine = FakeEngine([IMAGE])
    result = _up(lab, engine)
    assert result.changed and not result.pulled
    containers, networks = _made(engine, lab)
    assert sorted(containers) == [f"{lab.name}-mtls", f"{lab.name}-tls"] and networks == [f"{lab.name}-net"]
    for c in runtime.lab_containers(engine, lab.name):
        assert c.status == "running" and c.labels[layout.LABEL_DIR] == str(lab.dir.resolve())
    # Up again with the same configuration: nothing is recreated.
    calls = len(engine.calls)
    assert not _up(lab, engine).changed and len(engine.calls) == calls


def test_a_failed_start_rolls_back_what_this_run_made(lab):
    engine = FakeEngine([IMAGE])
    engine.fail["start"] = "driver failed programming external connectivity: Bind for 127.0.0.1:1: port is already allocated"
    engine.fail_after["start"] = 1                      # the first server starts, the second does not
    with pytest.raises(RuntimeFailure) as e:
        _up(lab, engine)
    assert "is already in use" in str(e.value) and "port is already allocated" in str(e.value)
    assert _made(engine, lab) == ([], [])
    assert ("remove", f"{lab.name}-tls") in engine.calls and ("remove_network", f"{lab.name}-net") in engine.calls


def test_a_server_that_never_answers_is_rolled_back_with_its_logs(lab):
    engine = FakeEngine([IMAGE])
    with pytest.raises(RuntimeFailure) as e:
        _up(lab, engine, probe=never, timeout=0.3)
    assert "did not complete a TLS handshake" in str(e.value) and "ConnectionRefusedError" in str(e.value)
    assert _made(engine, lab) == ([], [])


def test_an_interrupt_while_creating_rolls_back_and_keeps_a_network_that_was_there(lab):
    engine = FakeEngine([IMAGE])
    engine.create_network(layout.network_name(lab.name), {layout.LABEL_LAB: lab.name})
    real_create = engine.create

    def interrupted(svc, network):
        real_create(svc, network)
        raise KeyboardInterrupt           # the engine made it; the call never returned it

    engine.create = interrupted
    with pytest.raises(KeyboardInterrupt):
        _up(lab, engine)
    assert _made(engine, lab) == ([], [f"{lab.name}-net"])


def test_a_container_of_the_labs_name_that_lab_did_not_make_is_not_touched(lab):
    engine = FakeEngine([IMAGE])
    engine.create_network("other-net", {})
    from dataclasses import replace

    from lab.engine.compose import read
    svc = read(lab.dir / layout.COMPOSE_FILE).services[0]
    engine.create(replace(svc, labels={}), "other-net")
    with pytest.raises(RuntimeFailure, match="was not made by this lab"):
        _up(lab, engine)
    assert engine.container(svc.container_name) is not None
    assert not any(what == "remove" for what, _ in engine.calls)


def test_a_missing_image_is_pulled_once(lab):
    engine = FakeEngine()
    engine.images.add("placeholder")
    real_pull = engine.pull

    def pull(repo, tag):
        engine.images.add(IMAGE)
        return real_pull(repo, tag)

    engine.pull = pull
    assert _up(lab, engine).pulled
    assert engine.pulled == [("lab-nginx", "fake")]


def test_reload_waits_for_new_workers_and_refuses_a_paused_server(lab):
    engine = FakeEngine([IMAGE])
    _up(lab, engine)
    name = layout.container_name(lab.name, "mtls")
    before = runtime._worker_pids(engine, name)
    assert runtime.reload(engine, lab.name, "mtls") is True
    after = runtime._worker_pids(engine, name)
    assert after and not (after & before)
    engine.set_state(name, "paused")
    with pytest.raises(RuntimeFailure, match="is paused: nginx cannot reload it now"):
        runtime.reload(engine, lab.name, "mtls")
    engine.remove(name)
    assert runtime.reload(engine, lab.name, "mtls") is False


def test_check_config_speaks_in_lab_paths(lab):
    engine = FakeEngine([IMAGE])
    _up(lab, engine)
    engine.config_ok = ('nginx: [emerg] cannot load certificate "/etc/nginx/certificates/nope.crt"\n'
                        "nginx: configuration file /etc/nginx/lab/nginx.conf test failed")
    with pytest.raises(ConfigError) as e:
        runtime.check_config(engine, lab.name, "mtls")
    assert 'cannot load certificate "certs/nope.crt"' in str(e.value)
    assert "nginx-mtls/nginx.conf test failed" in e.value.details


def test_sync_reloads_only_a_server_behind_its_files(lab, monkeypatch):
    """lab/app/servers.sync: a server runs what lab noted it loaded; an edit (or a new CRL) makes it
    older, and only that server is checked (nginx -t) and reloaded."""
    from lab.app import selection, servers

    engine = FakeEngine([IMAGE])
    _up(lab, engine)
    chosen = selection.select(lab.dir, lab.name, require=True)
    servers.note_loaded(lab.dir, engine, lab.name)
    assert servers.sync(chosen, engine) == []
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    conf.write_text(conf.read_text() + "\n# an edit\n")
    engine.calls.clear()
    done = servers.sync(chosen, engine)
    assert [(r.server, r.files) for r in done] == [("mtls", ("nginx-mtls/nginx.conf",))]
    assert engine.calls == [("exec", f"{lab.name}-mtls"), ("signal", f"{lab.name}-mtls")]
    assert servers.sync(chosen, engine) == []
    # A refused edit: nginx -t says no, nothing is reloaded, the old configuration keeps serving.
    conf.write_text(conf.read_text() + "\n# another\n")
    engine.config_ok = "nginx: [emerg] unexpected end of file"
    engine.calls.clear()
    with pytest.raises(ConfigError):
        servers.sync(chosen, engine)
    assert ("signal", f"{lab.name}-mtls") not in engine.calls


def test_lab_up_on_the_fake_engine_rolls_back_a_failed_start(lab_params, monkeypatch, tmp_path):
    """The use case, end to end, with no engine: `lab up` checks, makes certificates and configuration,
    starts on the fake engine; the second start fails; nothing is left, the lab directory included."""
    engine = FakeEngine([IMAGE])
    engine.fail["start"] = "port is already allocated"
    engine.fail_after["start"] = 1
    monkeypatch.setattr(runtime, "connect", lambda: engine)
    monkeypatch.setattr(runtime, "handshake", answers)
    params = lab_params(image=IMAGE)
    result = run(*params.up_args())
    assert result.exit_code == 6 and "is already in use" in result.output, result.output
    assert "Traceback" not in result.output
    assert _made(engine, params) == ([], []) and not params.dir.exists()
    # And the same lab comes up once the port is free.
    engine.fail.clear()
    ok(run(*params.up_args()))
    assert sorted(_made(engine, params)[0]) == [f"{params.name}-mtls", f"{params.name}-tls"]
    down = ok(run("down", *params.args()))
    assert f"container {params.name}-tls" in down.output and _made(engine, params) == ([], [])


def test_an_engine_error_is_a_runtime_failure_with_the_engines_words():
    e = EngineError("500 Server Error: the engine is unwell")
    assert isinstance(e, LabError) and e.exit_code == 6 and "the engine is unwell" in str(e)


def test_status_on_the_fake_engine(lab, monkeypatch):
    engine = FakeEngine([IMAGE])
    _up(lab, engine)
    engine.set_state(layout.container_name(lab.name, "tls"), "paused")
    found = {s.server: s for s in runtime.status(engine, lab.name, None, probe=answers)}
    assert found["tls"].state == "paused" and found["mtls"].state == "running"
    assert found["mtls"].published == f"127.0.0.1:{lab.mtls_port}"
    engine.remove(layout.container_name(lab.name, "mtls"))
    assert runtime.status(engine, lab.name, None)[1].state == "missing"
    assert free_port()   # the test made nothing on this machine's ports
