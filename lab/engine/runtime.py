"""Stage 3: the containers, through the engine seam (lab/engine/seam.py: the
Docker SDK for Python behind a small protocol, a fake beside it for tests).

`up` creates what the rendered compose file describes (read by
lab/engine/compose.py): one network and the two nginx containers,
each carrying the lab's labels. `down` removes what carries those labels and
nothing else. A failed or interrupted `up` removes what that run created
before the error reaches the user, with the container's last log lines
attached. Also here: the probes (ports, TLS readiness), status, logs and
reload of a running lab.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lab.core import interrupts, layout, trace
from lab.core.concurrent import each
from lab.core.errors import ConfigError, LabError, RuntimeFailure
from lab.core.layout import Server
from lab.core.net import connect_host
from lab.engine import images
from lab.engine.compose import LabSpec, Service
from lab.engine.compose import read as read_compose
from lab.engine.network import NetworkAhead
from lab.engine.seam import ContainerInfo, ContainerState, Engine, EngineError, NetworkInfo, parse_time

Progress = Callable[[str], None]
#: A TLS probe: (host, port, server CA file) -> the TLS version it negotiated; raises OSError/SSLError.
Probe = Callable[[str, int, Path], str]


# --------------------------------------------------------------------------- engine


def connect() -> Engine:
    """The engine, once it has answered a ping, or DockerUnavailable."""
    from lab.engine.seam import DockerEngine

    return DockerEngine.connect()


def lab_containers(engine: Engine, lab: str) -> list[ContainerInfo]:
    return engine.containers({layout.LABEL_LAB: lab})


def lab_networks(engine: Engine, lab: str) -> list[NetworkInfo]:
    return engine.networks({layout.LABEL_LAB: lab})


def logs_tail(engine: Engine, name: str, lines: int = 15) -> str:
    try:
        return "\n".join(engine.logs(name, tail=lines)).strip()
    except LabError as e:  # the container may be gone already
        return f"(no logs: {e})"


# --------------------------------------------------------------------------- up


@dataclass
class UpResult:
    name: str
    network: str
    containers: list[str]
    changed: bool                 # False: the lab was already running this configuration
    pulled: bool = False


def port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        # Docker's proxy listens with SO_REUSEADDR: do the same, so a socket
        # in TIME_WAIT is not mistaken for a port in use.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def port_holder(engine: Engine, port: int) -> str:
    """Who holds a port: another lab (named), or another program."""
    for c in engine.containers({layout.LABEL_LAB: None}):
        if c.status == "running" and c.published.endswith(f":{port}"):
            other = c.labels.get(layout.LABEL_LAB)
            return f" by lab {other!r} (container {c.name}; `lab down --name {other}`)"
    return f" by another program (find it: ss -ltnp 'sport = :{port}')"


def port_in_use(engine: Engine | None, host: str, port: int, option: str, detail: str = "") -> RuntimeFailure:
    """The one message for a port that is taken, whoever finds it (preflight, start)."""
    holder = port_holder(engine, port) if engine is not None and not detail else ""
    return RuntimeFailure(f"port {port} on {host} is already in use{holder}" + (f" ({detail})" if detail else ""),
                          hint=f"free it, or choose another port with {option} (or --port-offset)")


def _check_ports(engine: Engine, spec: LabSpec) -> None:
    for svc in (s for s in spec.services if s.ports):
        host, port = svc.published
        if not port_free(host, port):
            raise port_in_use(engine, host, port, f"--{svc.key}-port")


def handshake(host: str, port: int, ca_file: Path, timeout: float = 1.0) -> str:
    """One TLS handshake that verifies the server against the lab's server CA; returns the TLS version."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.version() or "?"


# What OpenSSL's OCSP responder prints once it listens (openssl ocsp -port, 3.0 to 3.6).
RESPONDER_READY = "waiting for OCSP client connections"


def _wait_ready(engine: Engine, svc: Service, ca_file: Path, deadline: float, probe: Probe) -> None:
    """One container, until it answers: a server completes a verified TLS handshake on its published port;
    the OCSP responder, which publishes none, says it listens."""
    if svc.ports:
        host, port = svc.published
        serving, late, whose = f"serving TLS on {host}:{port}", f"complete a TLS handshake on {host}:{port}", "nginx's own; fix the template or configuration"

        def ready() -> None:
            probe(connect_host(host), port, ca_file)
    else:
        serving, late, whose = "answering OCSP requests", "start answering OCSP requests", "openssl ocsp's own"

        def ready() -> None:
            if RESPONDER_READY not in logs_tail(engine, svc.container_name, 40):
                raise OSError("not listening yet")
    delay, last_error = 0.02, "no answer yet"
    while True:
        try:
            ready()
            return
        except (OSError, ssl.SSLError) as e:
            last_error = f"{e.__class__.__name__}: {e}"
        found = engine.container(svc.container_name)
        if found is None or found.status in ("exited", "dead"):
            code = found.exit_code if found is not None else "?"
            raise RuntimeFailure(f"{svc.container_name} exited (code {code}) instead of {serving}",
                                 details=logs_tail(engine, svc.container_name), hint=f"the lines above are {whose}")
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"{svc.container_name} did not {late} in time ({last_error})",
                                 details=logs_tail(engine, svc.container_name),
                                 hint="the lines above are the container's last log lines")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def wait_ready(engine: Engine, services: list[Service], ca_file: Path, timeout: float,
               probe: Probe | None = None) -> None:
    """Wait, concurrently, until every service completes a verified TLS handshake."""
    deadline = time.monotonic() + timeout
    check = probe or handshake
    each(lambda svc: _wait_ready(engine, svc, ca_file, deadline, check), services, at_once=len(services))


def _create(engine: Engine, svc: Service, network: str) -> ContainerInfo:
    for m in svc.mounts:
        if not m.source.exists():
            raise RuntimeFailure(f"{m.source} is missing: it is mounted into {svc.container_name}",
                                 hint="run `lab up` to render the lab directory again")
    return engine.create(svc, network)


def _start_error(engine: Engine, svc: Service, e: EngineError) -> RuntimeFailure:
    if svc.command[:1] == ("openssl",) and "executable file not found" in e.reason:
        return RuntimeFailure(f"could not start {svc.container_name}: the image {svc.image} has no openssl command, "
                              "which the OCSP responder is", hint="rebuild lab's image (FORCE=1 "
                              "scripts/build-nginx-image.sh IMAGE: it now includes openssl), or use the official "
                              "nginx image; or lab up --revocation crl")
    if "already allocated" in e.reason or "address already in use" in e.reason:
        host, port = svc.published
        return port_in_use(None, host, port, f"--{svc.key}-port", detail=e.reason)
    return RuntimeFailure(f"could not start {svc.container_name}: {e.reason}")


def _is_current(existing: list[ContainerInfo], spec: LabSpec) -> bool:
    by_name = {c.name: c for c in existing}
    return len(existing) == len(spec.services) and all(
        (c := by_name.get(s.container_name)) is not None
        and c.status == "running"
        and c.labels.get(layout.LABEL_CONFIG_HASH) == spec.config_hash
        for s in spec.services
    )


def _refuse_foreign(engine: Engine, spec: LabSpec, existing: list[ContainerInfo]) -> None:
    """Another directory's lab of the same name, or a container of our name lab did not make: not ours to touch."""
    here = spec.services[0].labels.get(layout.LABEL_DIR)
    for c in existing:
        there = c.labels.get(layout.LABEL_DIR)
        if here and there and there != here and Path(there).exists():
            raise RuntimeFailure(
                f"lab name {spec.name!r} is already used by the lab in {there} (container {c.name})",
                hint=f"choose another name with --name, or take that lab down: lab down --dir {there}",
            )
    ours = {c.name for c in existing if c.labels.get(layout.LABEL_LAB) == spec.name}
    for svc in spec.services:
        if svc.container_name in ours:      # the lab's own, as just listed: no need to ask again
            continue
        other = engine.container(svc.container_name)
        if other is not None and other.labels.get(layout.LABEL_LAB) != spec.name:
            raise RuntimeFailure(f"a container named {svc.container_name} exists and was not made by this lab",
                                 hint="remove or rename it, or choose another lab name with --name")


def up(compose_file: Path, ca_file: Path, timeout: float = 30.0, progress: Progress | None = None,
       engine: Engine | None = None, probe: Probe | None = None, ahead: NetworkAhead | None = None) -> UpResult:
    """Make the running lab match the compose file; return what was done.

    Idempotent: when the lab's containers already run this exact
    configuration (same config-hash label) nothing is recreated. `ahead`: the
    network, made while the certificates were (its rollback is this run's).
    """
    say = progress or (lambda _msg: None)
    spec = read_compose(compose_file)
    engine = engine or connect()
    existing = lab_containers(engine, spec.name)
    names = [s.container_name for s in spec.services]
    _refuse_foreign(engine, spec, existing)
    if _is_current(existing, spec):
        with trace.span("up: servers answer (verified TLS handshakes)"):
            wait_ready(engine, list(spec.services), ca_file, timeout, probe)
        return UpResult(spec.name, spec.network, names, changed=False)
    pulled = images.ensure(engine, spec.services[0].image, say)

    for c in existing:
        say(f"replacing {c.name} (configuration changed or not running)")
        engine.remove(c.name)
    _check_ports(engine, spec)

    # Rollback goes by label, not only by what this code holds a reference to:
    # a Ctrl-C can land after the engine made an object and before the call
    # returned it. Every lab container left at this point was made by this run
    # (the old ones were just replaced); networks that were here stay.
    before = ahead.join() if ahead is not None else None
    networks_before = before if before is not None else {n.id for n in lab_networks(engine, spec.name)}
    try:
        with interrupts.held(), trace.span("up: engine: network, containers created and started"):
            _create_network_and_containers(engine, spec, say)
        say("waiting for both servers to complete a TLS handshake")
        with trace.span("up: servers answer (verified TLS handshakes)"):
            wait_ready(engine, list(spec.services), ca_file, timeout, probe)
    except BaseException:
        # Roll back what this run made, then let the error through. Logs were
        # already read into the error by _wait_ready.
        rollback(engine, spec.name, networks_before)
        raise
    return UpResult(spec.name, spec.network, names, changed=True, pulled=pulled)


def _create_network_and_containers(engine: Engine, spec: LabSpec, say: Progress) -> None:
    """The network (unless this lab's is there) and both containers, started."""
    network = engine.network(spec.network)
    if network is not None:
        if network.labels.get(layout.LABEL_LAB) != spec.name:
            raise RuntimeFailure(f"a network named {spec.network} exists and was not made by this lab",
                                 hint="remove it, or choose another lab name with --name")
    else:
        say(f"creating network {spec.network}")
        engine.create_network(spec.network, spec.network_labels)
    def create_and_start(svc: Service) -> None:
        _create(engine, svc, spec.network)
        try:
            engine.start(svc.container_name)
        except EngineError as e:
            raise _start_error(engine, svc, e) from None

    say(f"creating and starting {', '.join(s.container_name for s in spec.services)}")
    each(create_and_start, list(spec.services), at_once=len(spec.services))    # each one's start needs only itself


def rollback(engine: Engine, lab: str, networks_before: set[str]) -> None:
    """Remove the lab's containers, and the networks that were not there before; never fails."""
    for container in lab_containers(engine, lab):
        try:
            engine.remove(container.name)
        except LabError:
            pass
    for network in lab_networks(engine, lab):
        if network.id not in networks_before:
            try:
                engine.remove_network(network.name)
            except LabError:
                pass


# --------------------------------------------------------------------------- down


@dataclass(frozen=True)
class DownResult:
    name: str
    containers: tuple[str, ...]
    networks: tuple[str, ...]


def down(lab: str, engine: Engine | None = None) -> DownResult:
    """Remove the containers and networks labelled with this lab's name, and nothing else."""
    engine = engine or connect()
    containers = lab_containers(engine, lab)

    def remove(c: ContainerInfo) -> str:
        try:
            engine.stop(c.name, timeout=2)   # SIGQUIT (the container's stop signal): nginx exits at once
        except LabError:
            pass
        engine.remove(c.name)
        return c.name

    removed = tuple(sorted(each(remove, containers, at_once=len(containers))))
    nets = []
    for n in lab_networks(engine, lab):
        engine.remove_network(n.name)
        nets.append(n.name)
    return DownResult(lab, removed, tuple(sorted(nets)))


# --------------------------------------------------------------------------- status, logs


@dataclass(frozen=True)
class ServerStatus:
    server: str
    container: str
    state: ContainerState | Literal["missing"]
    health: str           # "answers TLS (TLSv1.3)" / "no TLS answer: ..." / "-"
    published: str
    image: str
    started_at: str       # ISO time, "" when not running
    uptime_s: float | None
    lab_dir: str


def _uptime(c: ContainerInfo) -> tuple[str, float | None]:
    import datetime as dt

    if c.status != "running" or not c.started_at:
        return "", None
    started = parse_time(c.started_at)
    if started is None:
        return c.started_at, None
    return c.started_at, (dt.datetime.now(dt.UTC) - started).total_seconds()


def _health(c: ContainerInfo, ca_file: Path | None, probe: Probe) -> str:
    if c.status != "running" or not c.published:
        return "-"
    host, port = c.published.rsplit(":", 1)
    if ca_file is None or not ca_file.exists():
        return "running (no CA file to check TLS with)"
    try:
        return f"answers TLS ({probe(connect_host(host.strip('[]')), int(port), ca_file)})"
    except (OSError, ssl.SSLError) as e:
        return f"no TLS answer: {e.__class__.__name__}"


def ask_responder(engine: Engine, lab: str) -> str:
    """One OCSP request to the lab's responder, from inside its own container (its loopback): "" when it
    answered, else why not. It also makes OpenSSL's responder read its index again at once: it checks the
    index for a change only before it waits for a request, so without this the first request after a
    change is answered from the index as it was."""
    status, why = ocsp_status(engine, lab, 1)
    return "" if status else why


def ocsp_status(engine: Engine, lab: str, serial: int) -> tuple[str, str]:
    """The lab's responder's answer about the client CA's certificate of this serial, its signature checked:
    ("good" | "revoked" | "unknown", "") or ("", why there is none)."""
    at = layout.CONTAINER_OCSP_DIR
    asked = f"0x{serial:X}"
    try:
        code, output = engine.exec(layout.container_name(lab, "ocsp"), [
            "openssl", "ocsp", "-issuer", f"{at}/{layout.OCSP_CA_FILE}", "-serial", asked,
            "-url", f"http://127.0.0.1:{layout.OCSP_PORT}", "-CAfile", f"{at}/{layout.OCSP_CA_FILE}", "-timeout", "3"])
    except LabError as e:
        return "", str(e)
    found = re.search(rf"^{asked}: (\w+)", output, re.MULTILINE | re.IGNORECASE)
    if code == 0 and found:
        return found.group(1), ""
    return "", (output.strip().splitlines() or [f"exit {code}"])[-1]


def _responder_health(engine: Engine, c: ContainerInfo, lab: str) -> str:
    if c.status != "running":
        return "-"
    why = ask_responder(engine, lab)
    return "answers OCSP (signed, verified)" if not why else f"no OCSP answer: {why}"


def status(engine: Engine, lab: str, ca_file: Path | None, probe: Probe | None = None,
           ocsp: bool = False) -> list[ServerStatus]:
    """Each server of the lab as the engine and a TLS handshake see it; missing servers included (the OCSP
    responder when the lab's settings want one, or when it runs)."""
    by_server = {c.labels.get(layout.LABEL_SERVER): c for c in lab_containers(engine, lab)}
    out = []
    responder = by_server.get("ocsp")
    if responder is not None:
        started, uptime = _uptime(responder)
        out.append(ServerStatus("ocsp", responder.name, responder.status, _responder_health(engine, responder, lab),
                                "", responder.image or "?", started, uptime, responder.labels.get(layout.LABEL_DIR, "")))
    elif ocsp:
        out.append(ServerStatus("ocsp", layout.container_name(lab, "ocsp"), "missing", "-", "", "", "", None, ""))
    for server in layout.SERVERS:
        c = by_server.get(server)
        if c is None:
            out.append(ServerStatus(server, layout.container_name(lab, server), "missing", "-", "", "", "", None, ""))
            continue
        started, uptime = _uptime(c)
        out.append(ServerStatus(server, c.name, c.status, _health(c, ca_file, probe or handshake), c.published, c.image or "?",
                                started, uptime, c.labels.get(layout.LABEL_DIR, "")))
    return out[1:] + out[:1] if out and out[0].server == "ocsp" else out     # the servers first


@dataclass(frozen=True)
class LabSummary:
    name: str
    dir: str
    containers: dict[str, str]     # container name -> state
    published: list[str]


def all_labs(engine: Engine) -> list[LabSummary]:
    """Every lab on this engine, found by label: name, directory, containers and their states, addresses."""
    labs: dict[str, list[ContainerInfo]] = {}
    for c in engine.containers({layout.LABEL_LAB: None}):
        labs.setdefault(c.labels[layout.LABEL_LAB], []).append(c)
    return [LabSummary(lab, next((c.labels.get(layout.LABEL_DIR, "") for c in cs), ""),
                       {c.name: c.status for c in cs}, sorted(filter(None, (c.published for c in cs))))
            for lab, cs in sorted(labs.items())]


def lab_for_dir(engine: Engine, lab_dir: Path) -> str | None:
    """The name of the lab whose containers were made from this directory (which may be gone)."""
    found = engine.containers({layout.LABEL_DIR: str(lab_dir.resolve())})
    return found[0].labels[layout.LABEL_LAB] if found else None


def server_state(engine: Engine, lab: str, server: Server) -> tuple[str, ContainerState] | None:
    """(container id, state: running, paused, exited, …) of a server, None when it has no container."""
    found = engine.container(layout.container_name(lab, server))
    return (found.id, found.status) if found is not None else None


def server_container(engine: Engine, lab: str, server: Server) -> ContainerInfo:
    found = engine.container(layout.container_name(lab, server))
    if found is None:
        raise RuntimeFailure(f"lab {lab!r} has no {server} server container ({layout.container_name(lab, server)})",
                             hint="start the lab with `lab up`")
    return found


def logs(engine: Engine, lab: str, servers: list[Server], tail: int | Literal["all"] = "all",
         follow: bool = False) -> Iterator[tuple[str, str]]:
    """nginx's access and error log lines of the named servers, as (server, line) pairs.

    Every container is looked up first (a clear error before any line). Without
    follow, one server's lines after the other's; with follow, both streams
    merged as lines arrive (one reader thread per server), until both end."""
    import queue

    containers = [(srv, server_container(engine, lab, srv).name) for srv in servers]
    if not follow:
        for srv, name in containers:
            for line in engine.logs(name, tail=tail):
                yield srv, line
        return
    lines: queue.Queue[tuple[str, str] | None] = queue.Queue()

    def pump(srv: str, name: str) -> None:
        try:
            for line in engine.logs(name, tail=tail, follow=True):
                lines.put((srv, line))
        finally:
            lines.put(None)

    for srv, name in containers:
        threading.Thread(target=pump, args=(srv, name), daemon=True).start()
    ended = 0
    while ended < len(containers):
        item = lines.get()
        if item is None:
            ended += 1
        else:
            yield item


# --------------------------------------------------------------------------- nginx -t, reload


def check_config(engine: Engine, lab: str, server: Server) -> None:
    """`nginx -t` inside the running container, on the files as they are now;
    ConfigError with nginx's own message (paths as in the lab directory) when it refuses them."""
    container = server_container(engine, lab, server)
    if container.status != "running":
        raise RuntimeFailure(f"{container.name} is {container.status}: there is no running nginx to reload",
                             hint="lab up starts it")
    conf = f"{layout.CONTAINER_CONF_DIR}/{layout.NGINX_CONF}"
    code, output = engine.exec(container.name, ["nginx", "-t", "-q", "-c", conf])
    if code != 0:
        said = layout.lab_paths(output.strip(), server)
        first = next((line for line in said.splitlines() if "[emerg]" in line), said.splitlines()[0] if said else "")
        reason = re.sub(r"^\d+#\d+: ", "", first.split("] ", 1)[-1] if "] " in first else first)
        raise ConfigError(f"nginx refused the {server} server's configuration: {reason}",
                          details=said, hint=f"fix it (lab diff shows your edits; lab reset "
                          f"{layout.SERVERS[server][0]}/{layout.NGINX_CONF} goes back to the lesson), then lab "
                          f"reload; the server still serves its previous configuration")


def nginx_versions(engine: Engine, lab: str, server: Server) -> tuple[str, str]:
    """(nginx's version, the OpenSSL it runs with) inside the server's container, from `nginx -V`."""
    container = server_container(engine, lab, server)
    code, output = engine.exec(container.name, ["nginx", "-V"])
    nginx = re.search(r"nginx/(\S+)", output)
    openssl = re.search(r"running with OpenSSL (\S+)", output) or re.search(r"built with OpenSSL (\S+)", output)
    return (nginx.group(1) if nginx else "?"), (openssl.group(1) if openssl else "?")


def _worker_pids(engine: Engine, name: str) -> set[str]:
    return {pid for pid, command in engine.processes(name) if command.startswith("nginx: worker process")}


def reload(engine: Engine, lab: str, server: Server, timeout: float = 10.0) -> bool:
    """Have nginx re-read its configuration (and CRL) without downtime; False when the server is not running.

    SIGHUP makes the master start new workers and ask the old ones to finish
    their requests and exit (https://nginx.org/en/docs/control.html). Until they
    have, an old worker may still take a connection with the old CRL, so this
    returns only when none of the old workers is left."""
    container = engine.container(layout.container_name(lab, server))
    if container is None:
        return False
    if container.status in ("paused", "restarting"):
        # A paused nginx cannot take the signal, and would wake up with what it had.
        raise RuntimeFailure(f"{container.name} is {container.status}: nginx cannot reload it now",
                             hint=f"docker unpause {container.name}, then `lab up` (it reloads the server)")
    if container.status != "running":
        return False   # not running: it reads the files anew when it starts
    old = _worker_pids(engine, container.name)
    engine.signal(container.name, "SIGHUP")
    deadline = time.monotonic() + timeout
    while True:
        now = _worker_pids(engine, container.name)
        if now and not (now & old):
            return True
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"nginx in {container.name} did not finish reloading within {timeout:g} s",
                                 details=logs_tail(engine, container.name), hint="the lines above are nginx's own")
        time.sleep(0.02)      # `docker top` itself takes about as long
