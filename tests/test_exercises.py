"""Break-and-fix exercises, end to end against real nginx: each is started and
shown failing, fixed with its reference solution and checked passing, then
reset to a lab whose `lab verify` passes again."""

from __future__ import annotations

import json
import shutil

import pytest

from helpers import ok, run
from lab.pki import ca
from lab.teach import exercise as exercise_files

EXERCISES = [e.id for e in exercise_files.load_all()]
# Exercises that issue certificates through the client CA's database (openssl ca: serials of their own,
# revocable, never reused), and how many (their break and their reference fix together).
ISSUED_THROUGH_THE_CA = {"client-purpose": 1, "not-yet-valid": 2, "crl-not-reloaded": 1}


@pytest.fixture(scope="module")
def lab(module_lab):
    lab = module_lab("labtest-exercises")
    return lab


@pytest.fixture(scope="module")
def ocsp_lab(module_lab):
    """For the exercises about the OCSP responder: a lab made with lab up --revocation ocsp."""
    lab = module_lab("labtest-exercises-ocsp")
    ok(run(*lab.up_args("--revocation", "ocsp")))
    return lab


def _lab_for(request, exercise_id: str):
    needs = exercise_files.find(exercise_id).needs
    return request.getfixturevalue("ocsp_lab" if needs == "ocsp" else "lab")


def test_list_json():
    data = json.loads(ok(run("exercise", "list", "--json")).stdout)
    assert [e["id"] for e in data] == EXERCISES
    assert all(e["title"] and e["check"] for e in data)
    assert "https://localhost:8889/hello-world.txt" in data[0]["story"]          # the default ports, no lab
    assert not any("_port}" in e["story"] for e in data)


def test_texts_get_the_labs_values_and_keep_their_own_braces():
    from lab.teach import exercise

    ex = exercise.Exercise("x", "t {lab}", "curl https://localhost:{mtls_port}/ then `server { listen 1; }`",
                           "port {tls_port}, not {other}", "")
    filled = exercise.for_lab(ex, {"lab": "room1", "tls_port": "9000", "mtls_port": "9001"})
    assert filled.title == "t room1" and filled.hint == "port 9000, not {other}"
    assert filled.story == "curl https://localhost:9001/ then `server { listen 1; }`"


@pytest.mark.docker
def test_an_exercise_tells_the_labs_own_ports(lab):
    started = ok(run("exercise", "start", "verification-optional", *lab.args()))
    try:
        assert f"https://localhost:{lab.mtls_port}/hello-world.txt" in started.output.replace("\n", " ")
    finally:
        ok(run("exercise", "reset", *lab.args()))
    ok(run("exercise", "start", "tls13-only", *lab.args()))
    try:
        assert str(lab.mtls_port) in ok(run("exercise", "hint", *lab.args())).output
    finally:
        ok(run("exercise", "reset", *lab.args()))


@pytest.mark.docker
@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_every_exercise_breaks_is_fixed_by_its_solution_and_resets(request, exercise_id):
    lab = _lab_for(request, exercise_id)
    before = {p.relative_to(lab.dir): p.read_bytes() for p in lab.dir.rglob("*")
              if p.is_file() and ".lab-cache" not in p.name}
    started = ok(run("exercise", "start", exercise_id, *lab.args()))
    assert f"Exercise {exercise_id}:" in started.output and "✗" in started.output
    # start shows the symptom, never the answer: no value the reference fix writes.
    for step in exercise_files.find(exercise_id).solution:
        if "edit" in step:
            assert step["with"].strip() not in started.output, (exercise_id, step["with"])
    check = run("exercise", "check", *lab.args())
    assert check.exit_code == 1 and "not fixed yet" in check.output
    status = json.loads(ok(run("exercise", "status", "--json", *lab.args())).stdout)
    assert {k: status[k] for k in ("id", "fixed")} == {"id": exercise_id, "fixed": False}
    # Read-only: what the running servers do; a file nginx refused to load (key-mismatch) is named.
    assert isinstance(status["not_loaded"], list)
    assert ok(run("exercise", "hint", *lab.args())).output.startswith(f"Hint for {exercise_id}")
    shown = ok(run("exercise", "solution", *lab.args()))
    assert "The reference fix" in shown.output
    fixed = ok(run("exercise", "solution", "--apply", *lab.args()))
    assert f"fixed: {exercise_id}" in fixed.output
    ok(run("exercise", "check", *lab.args()))
    running = json.loads(ok(run("exercise", "status", "--json", *lab.args())).stdout)
    assert running["fixed"] is True and running["solved"] is True and running["solution_shown"] is True
    assert running["hints_used"] == 1 and running["checks_run"] == 2 and running["started"]
    ended_before = len(running["ended"])
    ok(run("exercise", "reset", *lab.args()))
    # What an instructor collects: the exercise is in the lab's record, solved, with its hints and checks.
    record = json.loads(ok(run("exercise", "status", "--json", *lab.args())).stdout)
    assert record["id"] is None and len(record["ended"]) == ended_before + 1
    assert {k: record["ended"][-1][k] for k in ("id", "hints_used", "checks_run", "solved")} == \
        {"id": exercise_id, "hints_used": 1, "checks_run": 2, "solved": True}
    after = {p.relative_to(lab.dir): p.read_bytes() for p in lab.dir.rglob("*")
             if p.is_file() and ".lab-cache" not in p.name}
    changed = sorted(str(p) for p in set(before) | set(after) if before.get(p) != after.get(p))
    # The CA database counts CRLs it has made, and keeps every certificate it issued (client-purpose's fix
    # issues through it: a serial of its own, revocable, never reused); everything else is exactly as before.
    database = lab.dir / "certs" / "client-ca-db"
    if exercise_id in ISSUED_THROUGH_THE_CA:
        issued = [c for c in changed if c.startswith("certs/client-ca-db/issued/")]
        assert len(issued) == ISSUED_THROUGH_THE_CA[exercise_id], changed
        assert all(any(r.serial_hex in i for r in ca.ca_records(lab.dir)) for i in issued)
    allowed = ("certs/client-ca-db/crlnumber",) + (("certs/client-ca-db/",) if exercise_id in ISSUED_THROUGH_THE_CA
                                                   else ())
    derived = ("crl/client-ca.crl", "crl/students.map",     # made anew from the CA database, never put back
               ".lab-exercises.json")                         # and the record of the exercises done
    assert [c for c in changed if not c.startswith(allowed) and c not in derived] == []
    assert database.is_dir()
    assert "13 passed, 0 failed" in ok(run("verify", *lab.args())).output


@pytest.mark.docker
def test_a_student_fix_of_their_own_passes_too(lab):
    """check decides from requests: not the reference edit, another correct one (a comment, other spacing)."""
    ok(run("exercise", "start", "verification-optional", *lab.args()))
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    conf.write_text(conf.read_text().replace("ssl_verify_client optional;",
                                             "ssl_verify_client   on;   # fixed by a student"))
    ok(run("exercise", "check", *lab.args()))
    reset = ok(run("exercise", "reset", *lab.args()))
    # Their fix is their work: the lesson is back, and their version is kept beside it, said so.
    copies = list(conf.parent.glob("nginx.conf.edited-*"))
    try:
        assert len(copies) == 1 and "fixed by a student" in copies[0].read_text()
        assert f"your changes to nginx-mtls/nginx.conf are kept in {copies[0].name}" in reset.output
        assert "ssl_verify_client on;" in conf.read_text() and "fixed by a student" not in conf.read_text()
    finally:
        for copy in copies:
            copy.unlink()


@pytest.mark.docker
def test_an_exercise_reset_without_student_edits_keeps_no_copies(lab):
    ok(run("exercise", "start", "server-name", *lab.args()))
    reset = ok(run("exercise", "reset", *lab.args()))
    assert "kept" not in reset.output and not list(lab.dir.rglob("*.edited-*"))


@pytest.mark.docker
@pytest.mark.faults
def test_exercise_bad_input(lab, tmp_path):
    result = run("exercise", "check", *lab.args())
    assert result.exit_code == 2 and "no exercise is running" in result.output
    assert run("exercise", "start", "nope", *lab.args()).exit_code == 2
    ok(run("exercise", "start", "tls13-only", *lab.args()))
    second = run("exercise", "start", "key-mismatch", *lab.args())
    assert second.exit_code == 2 and "exercise 'tls13-only' is running" in second.output
    ok(run("exercise", "reset", *lab.args()))
    (tmp_path / "bad.yml").write_text("id: [")
    broken = run("exercise", "list", "--from", tmp_path)
    assert broken.exit_code == 3 and "bad.yml cannot be read" in broken.output


@pytest.mark.docker
@pytest.mark.faults
def test_an_instructors_own_exercise(lab, tmp_path):
    """Exercises are data: a copied and changed file is a new exercise."""
    from lab.core.resources import exercises_dir

    text = (exercises_dir() / "01-verification-optional.yml").read_text()
    (tmp_path / "mine.yml").write_text(text.replace("id: verification-optional", "id: mine")
                                       .replace("ssl_verify_client optional;", "ssl_verify_client off;"))
    listed = json.loads(ok(run("exercise", "list", "--json", "--from", tmp_path)).stdout)
    assert listed[-1]["id"] == "mine"
    ok(run("exercise", "start", "mine", "--from", tmp_path, *lab.args()))
    ok(run("exercise", "solution", "--apply", *lab.args()))
    ok(run("exercise", "reset", *lab.args()))


def test_an_exercise_needs_a_running_lab(rendered):
    result = run("exercise", "start", "tls13-only", *rendered.args(), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.exit_code == 4
    assert not (rendered.dir / ".lab-exercise").exists() and not (rendered.dir / "exercise").exists()
    assert shutil.which("openssl")


@pytest.mark.docker
def test_no_new_cas_while_an_exercise_runs(lab):
    """Its reset would put the old CAs' certificates back into a lab with new ones."""
    ok(run("exercise", "start", "server-name", *lab.args()))
    try:
        for command in ("up", "render"):
            refused = run(command, "--regenerate", *lab.args())
            assert refused.exit_code == 2 and "end it before making new CAs" in refused.output, refused.output
    finally:
        ok(run("exercise", "reset", *lab.args()))
    assert "13 passed, 0 failed" in ok(run("verify", *lab.args())).output


@pytest.mark.docker
def test_exercise_status_only_reads(lab):
    """`lab exercise status` asks the servers as they run: no reload, no lock, nothing written. A fix saved
    but not yet loaded is named, and not called fixed; `check` loads it and decides."""
    from lab.core import layout

    ok(run("exercise", "start", "verification-optional", *lab.args()))
    try:
        conf = lab.dir / "nginx-mtls" / layout.NGINX_CONF
        conf.write_text(conf.read_text().replace("ssl_verify_client optional;", "ssl_verify_client on;"))
        state = lab.dir / ".lab-exercise" / "state.json"
        cache = lab.dir / ".lab-cache.json"
        before = (state.read_bytes(), cache.read_bytes())
        status = json.loads(ok(run("exercise", "status", "--json", *lab.args())).stdout)
        assert status["not_loaded"] == ["nginx-mtls/nginx.conf"] and status["fixed"] is False
        assert (state.read_bytes(), cache.read_bytes()) == before
        shown = ok(run("exercise", "status", *lab.args())).output
        assert "changed since the servers loaded them: nginx-mtls/nginx.conf" in shown
        ok(run("exercise", "check", *lab.args()))
        after = json.loads(ok(run("exercise", "status", "--json", *lab.args())).stdout)
        assert after["not_loaded"] == [] and after["fixed"] is True
    finally:
        ok(run("exercise", "reset", *lab.args()))


@pytest.mark.docker
@pytest.mark.faults
@pytest.mark.parametrize("exercise_id", ["crl-expired", "verify-depth"])
def test_a_reset_never_readmits_a_student_revoked_during_the_exercise(lab, exercise_id):
    """The CRL saved at `start` is never put back: it is made anew from the CA database, with a higher
    number, and loaded. (It was restored, and a student revoked during the exercise got 200 again.)"""
    import subprocess

    from lab.pki import ca

    student = f"dave-{exercise_id}"
    ok(run("client", "add", student, *lab.args()))
    number = lambda: int((lab.dir / "certs" / "client-ca-db" / "crlnumber").read_text(), 16)  # noqa: E731
    ok(run("exercise", "start", exercise_id, *lab.args()))
    try:
        ok(run("client", "revoke", student, *lab.args()))
        before = number()
    finally:
        ok(run("exercise", "reset", *lab.args()))
    assert number() > before
    folder = lab.dir / "clients" / student
    cert = ca.load_cert(folder / f"{student}.crt")
    assert cert.serial_number in ca.crl_serials(lab.dir)
    answer = subprocess.run(["curl", "-sS", "-i", "--cacert", str(lab.dir / "certs" / "server-ca.crt"),
                             "--cert", str(folder / f"{student}.crt"), "--key", str(folder / f"{student}.key"),
                             f"https://localhost:{lab.mtls_port}/hello-world.txt"], capture_output=True, text=True)
    assert "HTTP/1.1 400" in answer.stdout and "200 OK" not in answer.stdout, answer.stdout
    status = ok(run("status", *lab.args())).output
    assert "revocation list" in status and "older" not in status
    assert not list((lab.dir / "crl").glob("*.edited-*"))


GOOD = """id: mine
title: A title
story: A story
break:
  - edit: nginx-mtls/nginx.conf
    replace: "ssl_verify_client on;"
    with: "ssl_verify_client optional;"
hint: A hint
check: [no-cert]
solution:
  - edit: nginx-mtls/nginx.conf
    replace: "ssl_verify_client optional;"
    with: "ssl_verify_client on;"
explain: Why
"""


@pytest.mark.faults
@pytest.mark.parametrize("change,says", [
    (("edit: nginx-mtls/nginx.conf\n    replace", "edit: 5\n    replace"), "break[0].edit: must be text, not int"),
    (("check: [no-cert]", "check: [{scenario: [1]}]"), "check[0].scenario: must be text, not list"),
    (("check: [no-cert]", "check: [nope]"), "check[0].scenario: 'nope' is not a lab verify scenario"),
    (("edit: nginx-mtls/nginx.conf\n    replace", "edit: \"nginx-mtls/\\0x\"\n    replace"), "break[0].edit: must be text without NUL"),
    (("edit: nginx-mtls/nginx.conf\n    replace", "edit: ../../etc/passwd\n    replace"), "break[0].edit: must be a path inside"),
    (("  - edit: nginx-mtls/nginx.conf\n    replace: \"ssl_verify_client on;\"\n    with: \"ssl_verify_client optional;\"\n",
      "  - run: \"touch x\"\n"), "break[0].run: must be a list"),
    (("  - edit: nginx-mtls/nginx.conf\n    replace: \"ssl_verify_client on;\"\n    with: \"ssl_verify_client optional;\"\n",
      "  - run: [touch, x]\n    creates: 5\n"), "break[0].creates: must be a list of paths"),
    (("title: A title", "title: &t A title\nhint2: *t"), "uses a YAML alias"),
    (("id: mine", "id: Mine Exercise"), "id: 'Mine Exercise': lower-case letters"),
    (("id: mine", "id: mine\nneeds: crl"), "needs: is ocsp"),
    (("id: mine", "id: mine\nload: sometimes"), "load: must be true or false"),
    (("  - edit: nginx-mtls/nginx.conf\n    replace: \"ssl_verify_client on;\"\n    with: \"ssl_verify_client optional;\"\n",
      "  - reload: ocsp\n"), "break[0].reload: must be a server: tls, mtls"),
    (("check: [no-cert]", "check: [{scenario: no-cert, refused: [1]}]"), "check[0].refused: must be text"),
])
def test_exercise_files_are_checked_with_one_line_naming_file_and_key(tmp_path, change, says):
    """Tracebacks and hangs from an instructor's file (--from DIR) became one line naming the file and key."""
    (tmp_path / "mine.yml").write_text(GOOD.replace(*change))
    result = run("exercise", "list", "--from", tmp_path)
    assert result.exit_code == 3 and says in result.output and "mine.yml" in result.output, result.output
    assert "Traceback" not in result.output


def test_billion_laughs_is_refused_at_once(tmp_path):
    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    (tmp_path / "laughs.yml").write_text(laughs + "id: x\n")
    result = run("exercise", "list", "--from", tmp_path)
    assert result.exit_code == 3 and "uses a YAML alias" in result.output


def test_braces_in_an_exercise_are_the_texts_own(tmp_path):
    """nginx braces in replace/with (`location / {`) raised ValueError from str.format_map."""
    from lab.teach import exercise

    (tmp_path / "mine.yml").write_text(GOOD.replace('replace: "ssl_verify_client on;"', 'replace: "location / {"', 1))
    ex = exercise.load_file(tmp_path / "mine.yml")
    assert exercise.fill(ex.breaks[0]["replace"], {"lab": "x"}) == "location / {"
    assert exercise.fill("{lab} ${HOME} {unknown}", {"lab": "x"}) == "x ${HOME} {unknown}"


@pytest.mark.docker
@pytest.mark.faults
def test_exercise_reset_never_writes_through_a_link(lab, tmp_path):
    """`lab exercise reset` wrote through a symlinked nginx.conf into any file."""
    ok(run("exercise", "start", "verification-optional", *lab.args()))
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    target = tmp_path / "someone-elses.conf"
    target.write_text("not the lab's\n")
    kept = conf.read_text()
    conf.unlink()
    conf.symlink_to(target)
    try:
        result = run("exercise", "reset", *lab.args())
        assert result.exit_code != 0 and "is a symbolic link" in result.output
        assert target.read_text() == "not the lab's\n"
    finally:
        conf.unlink()
        conf.write_text(kept)
        ok(run("exercise", "reset", *lab.args()))
    assert " passed, 0 failed" in ok(run("verify", *lab.args())).output


def test_exercise_list_takes_the_lab_like_every_command(rendered, tmp_path):
    """`lab exercise list` was the one command that refused --dir/--name; the texts carry this lab's ports."""
    found = json.loads(ok(run("exercise", "list", "--json", *rendered.args())).stdout)
    stories = {e["id"]: e["story"] for e in found}
    assert f"https://localhost:{rendered.mtls_port}/hello-world.txt" in stories["verification-optional"]
    missing = run("exercise", "list", "--dir", tmp_path / "no-lab-here")
    assert missing.exit_code == 3 and "no lab in" in missing.output


@pytest.mark.docker
@pytest.mark.faults
@pytest.mark.parametrize("exercise_id", EXERCISES)
def test_an_insecure_fix_is_not_a_fix(request, exercise_id):
    """crl-expired said "✓ fixed" with ssl_crl commented out (revocation off); tls13-only passed with TLSv1
    and TLSv1.1 on. Each exercise lists such fixes (insecure_fixes); each is refused, the defence named."""
    lab = _lab_for(request, exercise_id)
    from lab.core.settings import Settings, load_saved
    from lab.teach import exercise

    ex = exercise.find(exercise_id)
    assert len(ex.insecure_fixes) >= 2
    for fix in ex.insecure_fixes:
        ok(run("exercise", "start", exercise_id, *lab.args()))
        written = [lab.dir / step.get("to", step.get("write", "")) for step in fix if "to" in step or "write" in step]
        written += [lab.dir / c for step in fix for c in step.get("creates", [])]
        new = [p for p in written if not p.exists()]
        try:
            exercise.apply(lab.dir, fix, exercise.values(lab.dir, Settings(**load_saved(lab.dir))))
            result = run("exercise", "check", *lab.args())
            # Refused: a defence named, or (an identity fix fooled by the impostor) the exercise's own check.
            assert result.exit_code == 1 and ("you turned off" in result.output or "✗ " in result.output), \
                result.output
            assert "fixed: " + exercise_id not in result.output
        finally:
            ok(run("exercise", "reset", *lab.args()))
            ok(run("reset", *lab.args()))
            for path in new:               # what the fix made beside the lesson's files (a CA key among them),
                path.unlink(missing_ok=True)     # and the copy reset kept of it (FILE.edited-TIMESTAMP)
                for kept in path.parent.glob(f"{path.name}.edited-*"):
                    kept.unlink()
    assert " passed, 0 failed" in ok(run("verify", *lab.args())).output


@pytest.mark.docker
@pytest.mark.faults
def test_a_reset_says_when_the_lab_is_not_the_lesson(lab):
    """A wrong fix (# ssl_crl) survived three resets while `exercise reset` said "back to the lesson" and
    `lab status` said the mTLS server runs its revocation list; only `lab diff` showed it."""
    ok(run("exercise", "start", "server-name", *lab.args()))      # it never touches nginx-mtls/
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    conf.write_text(conf.read_text().replace("ssl_crl ", "# ssl_crl ", 1))
    try:
        reset = ok(run("exercise", "reset", *lab.args()))
        assert "back to the lesson" not in reset.output and "the lab is not the lesson" in reset.output
        assert "edited by hand: nginx-mtls/nginx.conf" in reset.output and "revocation" in reset.output
        status = ok(run("status", *lab.args())).output
        assert "not the lesson: revocation" in status and "its revocation list" not in status
    finally:
        ok(run("reset", *lab.args()))
    ok(run("exercise", "start", "server-name", *lab.args()))
    assert "back to the lesson" in ok(run("exercise", "reset", *lab.args())).output


@pytest.mark.docker
def test_start_shows_the_symptom_and_the_texts_teach(lab):
    """start gave the answer away ("ssl_verify_client is `optional`, not `on`"); tls13-only printed two rows
    both called client-cert; solution printed `- renew-crl: true`; verify-depth's cause blamed
    ssl_client_certificate."""
    started = ok(run("exercise", "start", "verification-optional", *lab.args()))
    try:
        assert "✗" in started.output and "ssl_verify_client" not in started.output and "→" not in started.output
        checked = run("exercise", "check", *lab.args())
        assert "ssl_verify_client" in checked.output          # check, after a try, says where to look
    finally:
        ok(run("exercise", "reset", *lab.args()))
    ok(run("exercise", "start", "tls13-only", *lab.args()))
    try:
        checked = run("exercise", "check", *lab.args()).output
        assert "client-cert (TLS 1.2 at most):" in checked and "\n✓ client-cert:" in checked
    finally:
        ok(run("exercise", "reset", *lab.args()))
    ok(run("exercise", "start", "crl-expired", *lab.args()))
    try:
        solution = ok(run("exercise", "solution", *lab.args())).output
        assert "renew-crl" not in solution and "make the CRL anew from the client CA's database" in solution
    finally:
        ok(run("exercise", "reset", *lab.args()))
    ok(run("exercise", "start", "verify-depth", *lab.args()))
    try:
        checked = run("exercise", "check", *lab.args()).output
        assert "ssl_verify_depth" in checked
    finally:
        ok(run("exercise", "reset", *lab.args()))


@pytest.mark.docker
def test_hints_are_graded(lab):
    """`hint` gave one text that named the directive; now each call gives the next, closer hint."""
    ok(run("exercise", "start", "verification-optional", *lab.args()))
    try:
        first = ok(run("exercise", "hint", *lab.args())).output
        second = ok(run("exercise", "hint", *lab.args())).output
        third = ok(run("exercise", "hint", *lab.args())).output
        again = ok(run("exercise", "hint", *lab.args())).output
        assert "(1 of 3)" in first and "ssl_verify_client" not in first and "a closer one" in first
        assert "(2 of 3)" in second and "(3 of 3)" in third and "ssl_verify_client" in third
        assert again == third
    finally:
        ok(run("exercise", "reset", *lab.args()))


@pytest.mark.docker
def test_an_exercise_does_not_start_on_top_of_an_earlier_fix(lab):
    """Three exercises started on top of a wrong fix (# ssl_crl) that reset had not undone: start refuses a lab
    that is not the lesson, naming what differs, unless --force."""
    conf = lab.dir / "nginx-mtls" / "nginx.conf"
    lesson = conf.read_text()
    conf.write_text(lesson.replace("ssl_crl ", "# ssl_crl ", 1))
    try:
        refused = run("exercise", "start", "verification-optional", *lab.args())
        assert refused.exit_code == 2 and "this lab is not the lesson" in refused.output
        assert "edited by hand: nginx-mtls/nginx.conf" in refused.output and "revocation" in refused.output
        assert "lab reset" in refused.output and json.loads(
            ok(run("exercise", "status", "--json", *lab.args())).stdout)["id"] is None
        ok(run("exercise", "start", "server-name", "--force", *lab.args()))
        ok(run("exercise", "reset", *lab.args()))
    finally:
        conf.write_text(lesson)
        ok(run("reset", *lab.args()))
    ok(run("exercise", "start", "verification-optional", *lab.args()))
    ok(run("exercise", "reset", *lab.args()))


@pytest.mark.docker
def test_a_deny_written_as_a_revoke_is_fixed_with_the_labs_own_commands(lab):
    """deny-as-revoke by hand, as its hints lead: lab up makes the one-day CRL anew from the CA database, a line
    in the access map denies the instructor /instructor/, lab reload loads it; the certificate was valid all along."""
    from lab.pki import ca

    ok(run("exercise", "start", "deny-as-revoke", *lab.args()))
    instructor = ca.load_cert(lab.dir / "demo-certs" / "instructor.crt").serial_number
    try:
        assert instructor in ca.crl_serials(lab.dir)
        assert instructor not in {r.serial for r in ca.ca_records(lab.dir) if r.status == "R"}
        broken = run("exercise", "check", *lab.args())
        assert broken.exit_code == 1 and "certificate revoked" in broken.output
        ok(run("up", *lab.args()))
        assert instructor not in ca.crl_serials(lab.dir)
        conf = lab.dir / "nginx-mtls" / "nginx.conf"
        rule = '"~^[^ ]*:instructor /instructor/" "";'
        conf.write_text(conf.read_text().replace(
            rule, '"lab-instructor:instructor /instructor/" "a guest has the laptop";  ' + rule))
        ok(run("reload", "mtls", *lab.args()))
        fixed = ok(run("exercise", "check", *lab.args()))
        assert "a guest has the laptop" in fixed.output
    finally:
        ok(run("exercise", "reset", *lab.args()))
        for copy in (lab.dir / "nginx-mtls").glob("nginx.conf.edited-*"):
            copy.unlink()


@pytest.mark.docker
def test_an_ocsp_exercise_needs_a_lab_that_asks_a_responder(lab):
    refused = run("exercise", "start", "ocsp-responder-down", *lab.args())
    assert refused.exit_code == 2 and "this lab's mTLS server asks none" in refused.output
    assert "lab up --revocation ocsp" in refused.output
    status = json.loads(ok(run("exercise", "status", "--json", *lab.args())).stdout)
    assert status.get("id") != "ocsp-responder-down"          # nothing was started
    assert "ssl_ocsp_responder" not in (lab.dir / "nginx-mtls" / "nginx.conf").read_text()
