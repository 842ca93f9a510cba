"""Stage 3: the containers. Docker sits behind this one module (and
lab/images.py, which uses the client connected here).

`up` creates what the rendered compose file describes (read by lab/compose.py)
through the Docker SDK for Python: one network and the two nginx containers,
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lab.engine import images
from lab.core import interrupts, layout
from lab.engine.compose import LabSpec, Service
from lab.engine.compose import read as read_compose
from lab.core.errors import DockerUnavailable, RuntimeFailure
from lab.core.settings import connect_host

Progress = Callable[[str], None]

DOCKER_HINT = (
    "start the Docker engine (this repository: sudo scripts/setup-docker.sh; "
    "elsewhere: systemctl start docker or Docker Desktop) and check DOCKER_HOST"
)


# --------------------------------------------------------------------------- engine


def connect():
    """A Docker client that has answered a ping, or DockerUnavailable."""
    import docker

    try:
        client = docker.from_env(timeout=30)
        client.ping()
        return client
    except docker.errors.DockerException as e:
        raise DockerUnavailable(f"cannot reach the Docker engine ({short_error(e)})", hint=DOCKER_HINT) from None
    except Exception as e:  # requests' connection errors, bad DOCKER_HOST schemes
        raise DockerUnavailable(f"cannot reach the Docker engine ({short_error(e)})", hint=DOCKER_HINT) from None


def engine_version(client) -> str:
    return client.version().get("Version", "?")


def short_error(e: BaseException) -> str:
    text = str(getattr(e, "explanation", None) or e).strip().splitlines()
    return text[-1][:300] if text else e.__class__.__name__


# --------------------------------------------------------------------------- inspection


def lab_containers(client, lab: str) -> list:
    return client.containers.list(all=True, filters={"label": f"{layout.LABEL_LAB}={lab}"})


def lab_networks(client, lab: str) -> list:
    return client.networks.list(filters={"label": f"{layout.LABEL_LAB}={lab}"})


def published(container) -> str:
    ports = (container.attrs.get("HostConfig") or {}).get("PortBindings") or {}
    for bindings in ports.values():
        for b in bindings or []:
            return f"{b.get('HostIp') or '0.0.0.0'}:{b.get('HostPort')}"
    return ""


def logs_tail(container, lines: int = 15) -> str:
    try:
        return container.logs(tail=lines).decode(errors="replace").strip()
    except Exception as e:  # the container may be gone already
        return f"(no logs: {short_error(e)})"


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


def port_holder(client, port: int) -> str:
    """Who holds a port: another lab (named), or another program."""
    for c in client.containers.list(filters={"label": layout.LABEL_LAB}):
        if published(c).endswith(f":{port}"):
            return f" by lab {c.labels.get(layout.LABEL_LAB)!r} (container {c.name}; `lab down --name {c.labels.get(layout.LABEL_LAB)}`)"
    return " by another program (find it: ss -ltnp 'sport = :%d')" % port


def _check_ports(client, spec: LabSpec) -> None:
    for svc in spec.services:
        host, port = svc.published
        if not port_free(host, port):
            raise RuntimeFailure(
                f"port {port} on {host} is already in use{port_holder(client, port)}",
                hint=f"free it, or choose another port with --{svc.key}-port",
            )


def handshake(host: str, port: int, ca_file: Path, timeout: float = 1.0) -> str:
    """One TLS handshake that verifies the server against the lab's server CA; returns the TLS version."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with socket.create_connection((host, port), timeout=timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.version() or "?"


def _wait_ready(container, svc: Service, ca_file: Path, deadline: float) -> None:
    host, port = svc.published
    delay, last_error = 0.02, "no answer yet"
    while True:
        try:
            handshake(connect_host(host), port, ca_file)
            return
        except (OSError, ssl.SSLError) as e:
            last_error = f"{e.__class__.__name__}: {e}"
        container.reload()
        if container.status in ("exited", "dead"):
            code = container.attrs.get("State", {}).get("ExitCode")
            raise RuntimeFailure(
                f"{svc.container_name} exited (code {code}) instead of serving TLS on {host}:{port}",
                details=logs_tail(container), hint="the lines above are nginx's own; fix the template or configuration",
            )
        if time.monotonic() > deadline:
            raise RuntimeFailure(
                f"{svc.container_name} did not complete a TLS handshake on {host}:{port} in time ({last_error})",
                details=logs_tail(container), hint="the lines above are the container's last log lines",
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def wait_ready(pairs: list, ca_file: Path, timeout: float) -> None:
    """Wait, concurrently, until every (container, service) completes a verified TLS handshake."""
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(max(1, len(pairs))) as pool:
        list(pool.map(lambda item: _wait_ready(item[0], item[1], ca_file, deadline), pairs))


def _create(client, svc: Service, network):
    import docker

    for m in svc.mounts:
        if not m.source.exists():
            raise RuntimeFailure(f"{m.source} is missing: it is mounted into {svc.container_name}",
                                 hint="run `lab up` to render the lab directory again")
    mounts = [docker.types.Mount(m.target, str(m.source), type="bind", read_only=m.read_only) for m in svc.mounts]
    return client.containers.create(
        svc.image, name=svc.container_name, labels=svc.labels, mounts=mounts, ports=svc.ports,
        network=network.name, stop_signal=svc.stop_signal, detach=True, command=list(svc.command) or None,
        cap_drop=list(svc.cap_drop) or None, cap_add=list(svc.cap_add) or None,
        security_opt=list(svc.security_opt) or None, read_only=svc.read_only, tmpfs=svc.tmpfs or None,
        pids_limit=svc.pids_limit, mem_limit=svc.mem_limit,
    )


def _start_error(svc: Service, e: Exception) -> RuntimeFailure:
    text = short_error(e)
    if "already allocated" in text or "address already in use" in text:
        host, port = svc.published
        return RuntimeFailure(f"port {port} on {host} is already in use ({text})",
                              hint=f"free it, or choose another port with --{svc.key}-port")
    return RuntimeFailure(f"could not start {svc.container_name}: {text}")


def _is_current(existing: list, spec: LabSpec) -> bool:
    by_name = {c.name: c for c in existing}
    return len(existing) == len(spec.services) and all(
        (c := by_name.get(s.container_name)) is not None
        and c.status == "running"
        and c.labels.get(layout.LABEL_CONFIG_HASH) == spec.config_hash
        for s in spec.services
    )


def up(compose_file: Path, ca_file: Path, timeout: float = 30.0, progress: Progress | None = None,
       client=None) -> UpResult:
    """Make the running lab match the compose file; return what was done.

    Idempotent: when the lab's containers already run this exact
    configuration (same config-hash label) nothing is recreated.
    """
    import docker

    say = progress or (lambda _msg: None)
    spec = read_compose(compose_file)
    client = client or connect()
    existing = lab_containers(client, spec.name)
    names = [s.container_name for s in spec.services]
    here = spec.services[0].labels.get(layout.LABEL_DIR)
    for c in existing:
        there = c.labels.get(layout.LABEL_DIR)
        if here and there and there != here and Path(there).exists():
            raise RuntimeFailure(
                f"lab name {spec.name!r} is already used by the lab in {there} (container {c.name})",
                hint=f"choose another name with --name, or take that lab down: lab down --dir {there}",
            )
    if _is_current(existing, spec):
        wait_ready([(client.containers.get(s.container_name), s) for s in spec.services], ca_file, timeout)
        return UpResult(spec.name, spec.network, names, changed=False)

    # A container or network with our name that lab did not make is not ours to remove.
    for svc in spec.services:
        try:
            other = client.containers.get(svc.container_name)
            if other.labels.get(layout.LABEL_LAB) != spec.name:
                raise RuntimeFailure(f"a container named {svc.container_name} exists and was not made by this lab",
                                     hint="remove or rename it, or choose another lab name with --name")
        except docker.errors.NotFound:
            pass
    pulled = images.ensure(client, spec.services[0].image, say)

    for c in existing:
        say(f"replacing {c.name} (configuration changed or not running)")
        c.remove(force=True)
    _check_ports(client, spec)

    created: list = []
    # Rollback goes by label, not only by what this code holds a reference to:
    # a Ctrl-C can land after the engine made an object and before the call
    # returned it. Every lab container left at this point was made by this run
    # (the old ones were just replaced); networks that were here stay.
    networks_before = {n.id for n in lab_networks(client, spec.name)}
    try:
        with interrupts.held():
            _create_network_and_containers(client, spec, created, say)
        say("waiting for both servers to complete a TLS handshake")
        wait_ready(created, ca_file, timeout)
    except BaseException as e:
        # Roll back what this run made, then let the error through. Logs were
        # already read into the error by _wait_ready.
        _rollback(client, spec.name, networks_before)
        if isinstance(e, docker.errors.DockerException):
            raise RuntimeFailure(f"Docker refused: {short_error(e)}") from None
        raise
    return UpResult(spec.name, spec.network, names, changed=True, pulled=pulled)


def _create_network_and_containers(client, spec: LabSpec, created: list, say) -> None:
    """The network (unless this lab's is there) and both containers, started; `created` collects them."""
    import docker

    nets = [n for n in client.networks.list(names=[spec.network]) if n.name == spec.network]
    if nets:
        network = nets[0]
        if (network.attrs.get("Labels") or {}).get(layout.LABEL_LAB) != spec.name:
            raise RuntimeFailure(f"a network named {spec.network} exists and was not made by this lab",
                                 hint="remove it, or choose another lab name with --name")
    else:
        say(f"creating network {spec.network}")
        network = client.networks.create(spec.network, driver="bridge", labels=spec.network_labels)
    for svc in spec.services:
        say(f"creating {svc.container_name}")
        created.append((_create(client, svc, network), svc))

    def start(item):
        container, svc = item
        try:
            container.start()
        except docker.errors.APIError as e:
            raise _start_error(svc, e) from None

    say("starting both servers")
    with ThreadPoolExecutor(len(created)) as pool:
        list(pool.map(start, created))


def _rollback(client, lab: str, networks_before: set) -> None:
    import docker

    for container in lab_containers(client, lab):
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            pass
    for network in lab_networks(client, lab):
        if network.id not in networks_before:
            try:
                network.remove()
            except docker.errors.DockerException:
                pass


# --------------------------------------------------------------------------- down


@dataclass(frozen=True)
class DownResult:
    name: str
    containers: tuple[str, ...]
    networks: tuple[str, ...]


def down(lab: str, client=None) -> DownResult:
    """Remove the containers and networks labelled with this lab's name, and nothing else."""
    import docker

    client = client or connect()
    containers = lab_containers(client, lab)

    def remove(c):
        try:
            c.stop(timeout=2)   # SIGQUIT (the container's stop signal): nginx exits at once
        except docker.errors.DockerException:
            pass
        try:
            c.remove(force=True)
        except docker.errors.NotFound:
            pass
        return c.name

    with ThreadPoolExecutor(max(1, len(containers))) as pool:
        removed = tuple(sorted(pool.map(remove, containers)))
    nets = []
    for n in lab_networks(client, lab):
        try:
            n.remove()
            nets.append(n.name)
        except docker.errors.NotFound:
            pass
    return DownResult(lab, removed, tuple(sorted(nets)))


# --------------------------------------------------------------------------- status, logs, images


@dataclass(frozen=True)
class ServerStatus:
    server: str
    container: str
    state: str            # running, exited, missing, ...
    health: str           # "answers TLS (TLSv1.3)" / "no TLS answer: ..." / "-"
    published: str
    image: str
    started_at: str       # ISO time, "" when not running
    uptime_s: float | None
    lab_dir: str


def _uptime(container) -> tuple[str, float | None]:
    import datetime as dt

    started = (container.attrs.get("State") or {}).get("StartedAt", "")
    if container.status != "running" or not started:
        return "", None
    try:
        t = dt.datetime.fromisoformat(started[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return started, None
    return started, (dt.datetime.now(dt.timezone.utc) - t).total_seconds()


def status(client, lab: str, ca_file: Path | None) -> list[ServerStatus]:
    """Each server of the lab as Docker and a TLS handshake see it; missing servers included."""
    by_server = {c.labels.get(layout.LABEL_SERVER): c for c in lab_containers(client, lab)}
    out = []
    for server in layout.SERVERS:
        c = by_server.get(server)
        if c is None:
            out.append(ServerStatus(server, layout.container_name(lab, server), "missing", "-", "", "", "", None, ""))
            continue
        address = published(c)
        health = "-"
        if c.status == "running" and address:
            host, port = address.rsplit(":", 1)
            try:
                if ca_file is not None and ca_file.exists():
                    health = f"answers TLS ({handshake(connect_host(host), int(port), ca_file)})"
                else:
                    health = "running (no CA file to check TLS with)"
            except (OSError, ssl.SSLError) as e:
                health = f"no TLS answer: {e.__class__.__name__}"
        started, uptime = _uptime(c)
        out.append(ServerStatus(server, c.name, c.status, health, address,
                                (c.attrs.get("Config") or {}).get("Image", "?"), started, uptime,
                                c.labels.get(layout.LABEL_DIR, "")))
    return out


@dataclass(frozen=True)
class LabSummary:
    name: str
    dir: str
    containers: dict          # container name -> state
    published: list


def all_labs(client) -> list[LabSummary]:
    """Every lab on this engine, found by label: name, directory, containers and their states, addresses."""
    labs: dict[str, list] = {}
    for c in client.containers.list(all=True, filters={"label": layout.LABEL_LAB}):
        labs.setdefault(c.labels[layout.LABEL_LAB], []).append(c)
    return [LabSummary(lab, next((c.labels.get(layout.LABEL_DIR, "") for c in cs), ""),
                       {c.name: c.status for c in cs}, sorted(filter(None, (published(c) for c in cs))))
            for lab, cs in sorted(labs.items())]


def lab_for_dir(client, lab_dir: Path) -> str | None:
    """The name of the lab whose containers were made from this directory (which may be gone)."""
    found = client.containers.list(all=True, filters={"label": f"{layout.LABEL_DIR}={lab_dir.resolve()}"})
    return found[0].labels[layout.LABEL_LAB] if found else None


def engine_time(client):
    """The engine's clock, as an aware datetime (None when it does not say)."""
    import datetime as dt

    try:
        text = client.info()["SystemTime"]
        return dt.datetime.fromisoformat(text[:26].rstrip("Z").split("+")[0] + "+00:00")
    except (KeyError, ValueError, TypeError):
        return None


def server_state(client, lab: str, server: str) -> tuple[str, str] | None:
    """(container id, state: running, paused, exited, …) of a server, None when it has no container."""
    import docker

    try:
        container = client.containers.get(layout.container_name(lab, server))
    except docker.errors.NotFound:
        return None
    return container.id, container.status


def server_container(client, lab: str, server: str):
    import docker

    try:
        return client.containers.get(layout.container_name(lab, server))
    except docker.errors.NotFound:
        raise RuntimeFailure(f"lab {lab!r} has no {server} server container ({layout.container_name(lab, server)})",
                             hint="start the lab with `lab up`") from None


def _server_logs(container, tail, follow: bool):
    if not follow:
        yield from container.logs(tail=tail, timestamps=False).decode(errors="replace").splitlines()
        return
    buffer = b""
    for chunk in container.logs(stream=True, follow=True, tail=tail):
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            yield line.decode(errors="replace")


def logs(client, lab: str, servers: list[str], tail: int | str = "all", follow: bool = False):
    """nginx's access and error log lines of the named servers, as (server, line) pairs.

    Every container is looked up first (a clear error before any line). Without
    follow, one server's lines after the other's; with follow, both streams
    merged as lines arrive (one reader thread per server), until both end."""
    import queue

    containers = [(srv, server_container(client, lab, srv)) for srv in servers]
    if not follow:
        for srv, container in containers:
            for line in _server_logs(container, tail, False):
                yield srv, line
        return
    lines: queue.Queue = queue.Queue()

    def pump(srv, container):
        for line in _server_logs(container, tail, True):
            lines.put((srv, line))
        lines.put(None)

    for srv, container in containers:
        threading.Thread(target=pump, args=(srv, container), daemon=True).start()
    ended = 0
    while ended < len(containers):
        item = lines.get()
        if item is None:
            ended += 1
        else:
            yield item


def _lab_paths(text: str, server: str) -> str:
    """nginx's messages with the container's paths written as the lab directory's."""
    folder = layout.SERVERS[server][0]
    for inside, outside in ((layout.CONTAINER_CONF_DIR, folder), (layout.CONTAINER_CERT_DIR, layout.CERTS_DIR),
                            (layout.CONTAINER_CRL_DIR, layout.CRL_DIR)):
        text = text.replace(inside + "/", outside + "/")
    return text


def check_config(client, lab: str, server: str) -> None:
    """`nginx -t` inside the running container, on the files as they are now;
    ConfigError with nginx's own message (paths as in the lab directory) when it refuses them."""
    from lab.core.errors import ConfigError

    container = server_container(client, lab, server)
    if container.status != "running":
        raise RuntimeFailure(f"{container.name} is {container.status}: there is no running nginx to reload",
                             hint="lab up starts it")
    conf = f"{layout.CONTAINER_CONF_DIR}/{layout.NGINX_CONF}"
    result = container.exec_run(["nginx", "-t", "-q", "-c", conf])
    if result.exit_code != 0:
        said = _lab_paths(result.output.decode(errors="replace").strip(), server)
        first = next((line for line in said.splitlines() if "[emerg]" in line), said.splitlines()[0] if said else "")
        reason = re.sub(r"^\d+#\d+: ", "", first.split("] ", 1)[-1] if "] " in first else first)
        raise ConfigError(f"nginx refused the {server} server's configuration: {reason}",
                          details=said, hint=f"fix it (lab diff shows your edits; lab reset "
                          f"{layout.SERVERS[server][0]}/{layout.NGINX_CONF} goes back to the lesson), then lab "
                          f"reload; the server still serves its previous configuration")


def _worker_pids(container) -> set[str]:
    top = container.top()
    titles = top.get("Titles") or []
    pid_i, cmd_i = titles.index("PID"), len(titles) - 1
    return {p[pid_i] for p in top.get("Processes") or [] if p[cmd_i].startswith("nginx: worker process")}


def reload(client, lab: str, server: str, timeout: float = 10.0) -> bool:
    """Have nginx re-read its configuration (and CRL) without downtime; False when the server is not running.

    SIGHUP makes the master start new workers and ask the old ones to finish
    their requests and exit (https://nginx.org/en/docs/control.html). Until they
    have, an old worker may still take a connection with the old CRL, so this
    returns only when none of the old workers is left."""
    import docker

    try:
        container = client.containers.get(layout.container_name(lab, server))
    except docker.errors.NotFound:
        return False
    if container.status in ("paused", "restarting"):
        # A paused nginx cannot take the signal, and would wake up with what it had.
        raise RuntimeFailure(f"{container.name} is {container.status}: nginx cannot reload it now",
                             hint=f"docker unpause {container.name}, then `lab up` (it reloads the server)")
    if container.status != "running":
        return False   # not running: it reads the files anew when it starts
    old = _worker_pids(container)
    container.kill(signal="SIGHUP")
    deadline = time.monotonic() + timeout
    while True:
        now = _worker_pids(container)
        if now and not (now & old):
            return True
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"nginx in {container.name} did not finish reloading within {timeout:g} s",
                                 details=logs_tail(container), hint="the lines above are nginx's own")
        time.sleep(0.05)
