#!/usr/bin/env python3
"""Runs consumer libraries' own PKCS#11 test suites against key4c and SoftHSM2, side by side.

Driven by scripts/consumer-suites (which installs the Debian packages first); see
interop/consumer-suites/README.md for what each suite is, where it comes from and what is
adapted (PINs, module path and token label only). Standard library only: it runs under the
system python3, and installs each suite into target/consumer-suites/.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = ROOT / "target" / "consumer-suites"

# PINs that satisfy the Key4C V3 PIN policy (shared/spec/key4c-v3-token.md section 2: 9..255
# bytes, upper, lower, digit and special, no runs or sequences), used for both modules.
USER_PIN = "Us3r#Pin.9k"
SO_PIN = "So-Pin.2024x"
NEW_USER_PIN = "Key4C-Pin.9x"  # where a suite changes the User PIN and changes it back

PYTHON_PKCS11 = "0.10.1"
PYKCS11 = "1.5.20"
CRYPTOKI = "0.12.1"
PKCS11_CHECK = "0.2.3"
# The python suites' own test dependencies, pinned so that runs compare.
PY_TEST_DEPS = ["asn1crypto==1.5.1", "cryptography==50.0.2", "parameterized==0.9.0", "pytest==9.2.0"]
CRYPTO11_DIR = Path("/usr/share/gocode/src/github.com/ThalesIgnite/crypto11")

# tarfile's "data" filter where this Python has it (3.11.4+; Debian bookworm's 3.11.2 has not).
SAFE_TAR = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}

SUITES = ["python-pkcs11", "pykcs11", "cryptoki", "crypto11", "pkcs11-check"]
OUTCOMES = ["pass", "fail", "skip", "crash", "not-run"]


def log(msg):
    print(msg, flush=True)


class SuiteError(Exception):
    """The suite could not be installed or run at all (not a test failure)."""


# ---------------------------------------------------------------------------------------------
# processes


def run_logged(cmd, log_path, cwd=None, env=None, timeout=None, stdout_path=None):
    """Runs cmd in its own process group, output appended to log_path (stdout to stdout_path
    when given). Returns (returncode, timed_out). On timeout the whole group is killed."""
    with open(log_path, "a", encoding="utf-8", errors="replace") as err:
        out = open(stdout_path, "w", encoding="utf-8") if stdout_path else err
        err.write(f"$ {' '.join(str(c) for c in cmd)}\n")
        err.flush()
        proc = subprocess.Popen(
            [str(c) for c in cmd], cwd=cwd, env=env, stdout=out, stderr=err,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            rc = proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
            timed_out = True
        finally:
            if stdout_path:
                out.close()
    return rc, timed_out


def check(cmd, **kw):
    """Runs a setup command; raises SuiteError with its output when it fails."""
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise SuiteError(f"{' '.join(str(c) for c in cmd)} failed ({res.returncode}):\n"
                         f"{res.stdout[-2000:]}{res.stderr[-2000:]}")
    return res.stdout


def died(rc):
    """A runner that ended by a signal (negative code) or a shell-style 128+signal code."""
    return rc < 0 or rc >= 128


# ---------------------------------------------------------------------------------------------
# modules and fresh tokens


def base_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KEY4C_", "SOFTHSM2_", "PKCS11_", "P11TEST_", "PYKCS11"))}
    env.pop("CI", None)  # the suites' own CI switches are not ours
    return env


def fresh_token(side, module, tmp, label):
    """A new token for one suite on one module: a temporary store / token directory, the token
    initialised with SO_PIN and the User PIN set to USER_PIN. Returns the environment."""
    env = base_env()
    tmp.mkdir(parents=True, exist_ok=True)
    if side == "key4c":
        conf = tmp / "key4c.toml"
        conf.write_text(
            f'store = "{tmp}/store"\nstate_dir = "{tmp}/state"\nkdf_iterations = 1000\n'
            f'log_file = "{tmp}/key4c.log"\n'
        )
        env["KEY4C_CONF"] = str(conf)
        check(["pkcs11-tool", "--module", module, "--init-token", "--label", label,
               "--so-pin", SO_PIN], env=env)
        check(["pkcs11-tool", "--module", module, "--init-pin", "--so-pin", SO_PIN,
               "--pin", USER_PIN], env=env)
    else:
        (tmp / "tokens").mkdir(exist_ok=True)
        conf = tmp / "softhsm2.conf"
        conf.write_text(f"directories.tokendir = {tmp}/tokens\nobjectstore.backend = file\n"
                        "log.level = ERROR\n")
        env["SOFTHSM2_CONF"] = str(conf)
        check(["softhsm2-util", "--init-token", "--free", "--label", label,
               "--so-pin", SO_PIN, "--pin", USER_PIN], env=env)
    return env


# ---------------------------------------------------------------------------------------------
# installing the suites (idempotent: a stamp file records what is in place)


def stamped(path, stamp):
    return (path / ".stamp").is_file() and (path / ".stamp").read_text() == stamp


def make_venv(path, python, packages):
    stamp = f"{python}\n" + "\n".join(packages)
    if stamped(path, stamp):
        return path / "bin" / "python"
    log(f"== installing {' '.join(packages)} into {path}")
    shutil.rmtree(path, ignore_errors=True)
    check([python, "-m", "venv", path])
    check([path / "bin" / "pip", "install", "-q", "--disable-pip-version-check", *packages])
    (path / ".stamp").write_text(stamp)
    return path / "bin" / "python"


def sdist(python, name, version, dist_name):
    """The project's sdist from PyPI (its tests ship only there)."""
    target = WORK / "dist" / f"{dist_name}-{version}.tar.gz"
    if not target.is_file():
        check([python, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
               "--no-binary", name, "-d", WORK / "dist", f"{name}=={version}"])
    if not target.is_file():
        raise SuiteError(f"pip download gave no {target.name}")
    return target


def unpack_tests(archive, member, dest):
    """Extracts one directory of an sdist into dest (fresh)."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        prefix = tar.getnames()[0].split("/")[0]
        members = [m for m in tar.getmembers() if m.name.startswith(f"{prefix}/{member}/")]
        if not members:
            raise SuiteError(f"{archive.name} has no {member}/")
        tar.extractall(dest, members=members, **SAFE_TAR)
    return dest / prefix / member


def replace_exactly(path, old, new, count):
    """The one kind of edit made to a suite: a hard-coded PIN string, checked to occur exactly
    `count` times (so an upstream change cannot make the edit silently miss)."""
    text = path.read_text()
    found = text.count(old)
    if found != count:
        raise SuiteError(f"{path.name}: expected {count} occurrence(s) of {old!r}, found {found}")
    path.write_text(text.replace(old, new))


def find_python312():
    """pkcs11-check needs Python >= 3.12 (this machine's python3 is 3.11)."""
    candidates = [os.environ.get("PYTHON312", ""), shutil.which("python3.13") or "",
                  shutil.which("python3.12") or ""]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted((str(p / "bin" / "python3") for p in pyenv.glob("3.1[2-9]*")),
                         reverse=True)
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        res = subprocess.run([c, "-c", "import sys, venv, ssl, ctypes; print(sys.version_info >= (3, 12))"],
                             capture_output=True, text=True)
        if res.returncode == 0 and res.stdout.strip() == "True":
            return c
    raise SuiteError("pkcs11-check needs Python >= 3.12 with venv; none found (set PYTHON312)")


# ---------------------------------------------------------------------------------------------
# pytest suites (python-pkcs11, PyKCS11): per-test journal, a crash resumes after the crasher


def pytest_outcome(reports):
    """One outcome per test from its setup/call/teardown reports."""
    by_when = {r["when"]: r for r in reports}
    failed = [r for r in reports if r["outcome"] == "failed"]
    call = by_when.get("call")
    if failed:
        return "fail", failed[0]["when"], failed[0]["detail"]
    if call and call.get("wasxfail"):
        return "skip", "xfail", f"expected failure (the suite's own): {call['wasxfail']}"
    skipped = [r for r in reports if r["outcome"] == "skipped"]
    if skipped:
        return "skip", "skipped", skipped[0]["detail"]
    if call and call["outcome"] == "passed":
        return "pass", "passed", ""
    return None


def run_pytest_suite(python, suite_dir, test_dir, env, logdir, alone=True, timeout=3600):
    env = dict(env)
    env["PYTHONPATH"] = str(HERE)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    journal = logdir / "journal.jsonl"
    env["CONSUMER_SUITES_JOURNAL"] = str(journal)
    base = [python, "-m", "pytest", "-p", "pytest_outcomes", "-p", "no:cacheprovider", "-q",
            "-rN"]
    listing = logdir / "collect.txt"
    rc, _ = run_logged([*base, "--collect-only", test_dir], logdir / "run.log", cwd=suite_dir,
                       env=env, timeout=300, stdout_path=listing)
    collected = [line.strip() for line in listing.read_text().splitlines() if "::" in line]
    if not collected:
        raise SuiteError(f"pytest collected nothing (rc {rc}); see {logdir / 'run.log'}")
    results = {}
    started_at = time.monotonic()
    args = [test_dir]
    for attempt in range(50):
        journal.unlink(missing_ok=True)
        left = timeout - (time.monotonic() - started_at)
        rc, timed_out = run_logged([*base, *args], logdir / "run.log", cwd=suite_dir, env=env,
                                   timeout=max(left, 60))
        reports, started = {}, []
        if journal.exists():
            for line in journal.read_text().splitlines():
                rec = json.loads(line)
                if rec["event"] == "start":
                    started.append(rec["nodeid"])
                else:
                    reports.setdefault(rec["nodeid"], []).append(rec)
        for nodeid in started:
            outcome = pytest_outcome(reports.get(nodeid, []))
            if outcome and any(r["when"] == "teardown" for r in reports.get(nodeid, [])):
                results[nodeid] = dict(zip(("outcome", "raw", "detail"), outcome))
            elif died(rc) or timed_out:
                why = "timed out" if timed_out else f"the test process died (exit {rc})"
                results[nodeid] = {"outcome": "crash", "raw": "crash",
                                   "detail": f"{why} during this test"}
            else:
                results[nodeid] = {"outcome": "fail", "raw": "incomplete",
                                   "detail": f"no outcome reported (pytest exit {rc})"}
        remaining = [n for n in collected if n not in results]
        if not remaining or timed_out or not (died(rc) and started):
            break
        log(f"   resuming after a crash in {started[-1]} ({len(remaining)} tests left)")
        args = remaining
    for nodeid in collected:
        results.setdefault(nodeid, {"outcome": "not-run", "raw": "not-run",
                                    "detail": "not run: the runner died or timed out before it"})
    # Diagnosis, not a verdict: each failed test again, alone, in a new process (same token).
    # A test that passes alone failed in the suite because of an earlier one (a setUp that
    # fails leaves its logged-in session open, and every later C_Login gets
    # CKR_USER_ALREADY_LOGGED_IN): "alone" tells a test's own failure from such a cascade.
    # Half a second each: not in --smoke.
    for nodeid in [n for n in collected if alone and results[n]["outcome"] in ("fail", "crash")][:300]:
        journal.unlink(missing_ok=True)
        rc, timed_out = run_logged([*base, nodeid], logdir / "alone.log", cwd=suite_dir, env=env,
                                   timeout=300)
        reports = []
        if journal.exists():
            reports = [r for r in map(json.loads, journal.read_text().splitlines())
                       if r["event"] == "report" and r["nodeid"] == nodeid]
        outcome = pytest_outcome(reports) if reports else None
        if outcome is None:
            outcome = ("crash", "crash", f"exit {rc}" + (", timed out" if timed_out else ""))
        results[nodeid]["alone"] = dict(zip(("outcome", "raw", "detail"), outcome))
    return results


def prepare_python_pkcs11(args):
    python = make_venv(WORK / "py-venv", args.python,
                       [f"python-pkcs11=={PYTHON_PKCS11}", f"pykcs11=={PYKCS11}", *PY_TEST_DEPS])
    archive = sdist(python, "python-pkcs11", PYTHON_PKCS11, "python_pkcs11")
    return {"python": python, "archive": archive, "version": PYTHON_PKCS11}


def run_python_pkcs11(ctx, side, module, tmp, smoke):
    """python-pkcs11's tests/ from its sdist, unmodified: it reads the module, token label and
    PINs from PKCS11_MODULE, PKCS11_TOKEN_LABEL, PKCS11_TOKEN_PIN, PKCS11_TOKEN_SO_PIN."""
    label = "python-pkcs11"
    env = fresh_token(side, module, tmp / "token", label)
    tests = unpack_tests(ctx["archive"], "tests", tmp / "suite")
    env.update(PKCS11_MODULE=module, PKCS11_TOKEN_LABEL=label, PKCS11_TOKEN_PIN=USER_PIN,
               PKCS11_TOKEN_SO_PIN=SO_PIN)
    # --smoke runs it whole: it takes seconds.
    return run_pytest_suite(ctx["python"], tests.parent, "tests", env, tmp, alone=not smoke), {
        "command": f"cd {tests.parent} && PKCS11_MODULE={module} PKCS11_TOKEN_LABEL={label} "
                   f"PKCS11_TOKEN_PIN=... PKCS11_TOKEN_SO_PIN=... python -m pytest tests"}


def prepare_pykcs11(args):
    python = make_venv(WORK / "py-venv", args.python,
                       [f"python-pkcs11=={PYTHON_PKCS11}", f"pykcs11=={PYKCS11}", *PY_TEST_DEPS])
    archive = sdist(python, "pykcs11", PYKCS11, "pykcs11")
    return {"python": python, "archive": archive, "version": PYKCS11}


# PyKCS11's tests hard-code SoftHSM's PINs of its CI: "1234" (User), "123456" (SO), "4321"
# (a second User PIN). They break the Key4C V3 PIN policy; the quoted strings (and nothing
# else) are replaced in the scratch copy, each count checked.
PYKCS11_PINS = {  # file: (occurrences of "1234", of "123456", of "4321")
    "test_LowLevel.py": (1, 0, 0), "test_asymetric.py": (1, 0, 0),
    "test_asymetric_ECC.py": (2, 0, 0), "test_asymetric_gost.py": (1, 0, 0),
    "test_derive.py": (1, 0, 0), "test_init.py": (7, 6, 5), "test_objects.py": (2, 0, 0),
    "test_pin.py": (2, 0, 0), "test_symetric.py": (1, 0, 0), "test_wrap.py": (1, 0, 0),
}


def run_pykcs11(ctx, side, module, tmp, smoke):
    """PyKCS11's test/ from its sdist: the module from PYKCS11LIB, the first slot with a token;
    only its hard-coded PINs are replaced (PYKCS11_PINS)."""
    env = fresh_token(side, module, tmp / "token", "pykcs11")
    tests = unpack_tests(ctx["archive"], "test", tmp / "suite")
    for name, (user, so, user2) in PYKCS11_PINS.items():
        for old, new, count in [('"1234"', USER_PIN, user), ('"123456"', SO_PIN, so),
                                ('"4321"', NEW_USER_PIN, user2)]:
            replace_exactly(tests / name, old, f'"{new}"', count)
    leftover = subprocess.run(["grep", "-rnE", r'"(1234|123456|4321)"', tests],
                              capture_output=True, text=True).stdout
    if leftover:
        raise SuiteError(f"PyKCS11: a hard-coded PIN was not replaced:\n{leftover}")
    env["PYKCS11LIB"] = module
    # --smoke runs it whole: it takes seconds.
    return run_pytest_suite(ctx["python"], tests.parent, "test", env, tmp, alone=not smoke), {
        "command": f"cd {tests.parent} && PYKCS11LIB={module} python -m pytest test"}


# ---------------------------------------------------------------------------------------------
# cryptoki (Rust): the .crate from crates.io, its tests/ built once, each test binary run


def prepare_cryptoki(args):
    fetch = WORK / "cryptoki-fetch"
    (fetch / "src").mkdir(parents=True, exist_ok=True)
    (fetch / "src" / "lib.rs").write_text("")
    (fetch / "Cargo.toml").write_text(
        '[package]\nname = "cryptoki-fetch"\nversion = "0.0.0"\nedition = "2021"\n'
        f'publish = false\n\n[dependencies]\ncryptoki = "={CRYPTOKI}"\n\n[workspace]\n')
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    crates = sorted(cargo_home.glob(f"registry/cache/*/cryptoki-{CRYPTOKI}.crate"))
    if not crates:
        log(f"== fetching cryptoki {CRYPTOKI} from crates.io")
        check(["cargo", "fetch", "-q", "--manifest-path", fetch / "Cargo.toml"])
        crates = sorted(cargo_home.glob(f"registry/cache/*/cryptoki-{CRYPTOKI}.crate"))
    if not crates:
        raise SuiteError(f"cargo fetch gave no cryptoki-{CRYPTOKI}.crate")
    src = WORK / f"cryptoki-{CRYPTOKI}"
    stamp = f"{crates[0]}\n{USER_PIN}\n{SO_PIN}\n{NEW_USER_PIN}\n"
    if not stamped(src, stamp):
        shutil.rmtree(src, ignore_errors=True)
        with tarfile.open(crates[0]) as tar:
            tar.extractall(WORK, **SAFE_TAR)
        # Only the suite's hard-coded PINs change; [workspace] keeps cargo from taking the
        # scratch copy for a member of ours.
        replace_exactly(src / "tests/common/mod.rs", '"fedcba123456"', f'"{USER_PIN}"', 1)
        replace_exactly(src / "tests/common/mod.rs", '"abcdef654321"', f'"{SO_PIN}"', 1)
        replace_exactly(src / "tests/basic.rs", '"123456abcdef"', f'"{NEW_USER_PIN}"', 1)
        with open(src / "Cargo.toml", "a") as f:
            f.write("\n[workspace]\n")
        (src / ".stamp").write_text(stamp)
    # The target dir scripts/interop-cryptoki builds the same crate's tests in (CI runs it
    # first): the dependencies are shared, only this copy of cryptoki and its tests differ
    # (another source path, so other artifacts: the two never overwrite each other's).
    target = Path(os.environ.get("CRYPTOKI_TARGET_DIR", ROOT / "target/interop/cryptoki-target"))
    log(f"== building cryptoki {CRYPTOKI}'s tests (target dir {target})")
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    out = check(["cargo", "test", "--locked", "--lib", "--test", "*", "--no-run", "--message-format=json",
                 "-q"], cwd=src, env=env)
    binaries = {}
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") \
                and msg["profile"].get("test"):
            binaries[msg["target"]["name"]] = msg["executable"]
    if not binaries:
        raise SuiteError("cargo built no cryptoki test binary")
    return {"binaries": binaries, "src": src, "version": CRYPTOKI}


LIBTEST_LINE = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)(?:, (.*))?$")


def run_cryptoki(ctx, side, module, tmp, smoke):
    """cryptoki's integration tests: TEST_PKCS11_MODULE names the module; the suite itself
    calls C_InitToken (SO PIN) and C_InitPIN on the first slot with a token."""
    env = fresh_token(side, module, tmp / "token", "Test Token")
    env["TEST_PKCS11_MODULE"] = module
    env["RUST_BACKTRACE"] = "0"
    results = {}
    binaries = ctx["binaries"]  # --smoke runs them all: they take seconds
    for name, exe in sorted(binaries.items()):
        listing = subprocess.run([exe, "--list"], capture_output=True, text=True, env=env).stdout
        names = [line[:-len(": test")] for line in listing.splitlines() if line.endswith(": test")]
        done = {}
        for attempt in range(50):
            todo = [n for n in names if n not in done]
            if not todo:
                break
            out = tmp / f"{name}.{attempt}.out"
            cmd = [exe, "--test-threads", "1", "--exact"]
            for n in done:
                cmd += ["--skip", n]
            rc, timed_out = run_logged(cmd, tmp / "run.log", env=env, cwd=tmp, timeout=3600,
                                       stdout_path=out)
            text = out.read_text(errors="replace")
            running = None
            for line in text.splitlines():
                m = LIBTEST_LINE.match(line)
                if m:
                    test, verdict, reason = m.groups()
                    outcome = {"ok": "pass", "FAILED": "fail", "ignored": "skip"}[verdict]
                    done[test] = {"outcome": outcome, "raw": verdict, "detail": reason or ""}
                elif line.startswith("test ") and line.rstrip().endswith("..."):
                    running = line[5:].rsplit(" ...", 1)[0]
            for test, body in re.findall(r"^---- (\S+) stdout ----\n(.*?)(?=^---- |^failures:$)",
                                         text, re.M | re.S):
                if test in done:
                    done[test]["detail"] = body.strip()[-4000:]
            if running and running not in done:
                why = "timed out" if timed_out else f"the test binary died (exit {rc})"
                done[running] = {"outcome": "crash", "raw": "crash", "detail": f"{why} in this test"}
                log(f"   {name}: crash in {running}, resuming")
                continue
            break
        # Diagnosis, as for the pytest suites: each failed test again, alone, in a new process.
        for n in [n for n in names if done.get(n, {}).get("outcome") in ("fail", "crash")]:
            out = tmp / f"{name}.alone.out"
            rc, timed_out = run_logged([exe, "--test-threads", "1", "--exact", n],
                                       tmp / "alone.log", env=env, cwd=tmp, timeout=600,
                                       stdout_path=out)
            text = out.read_text(errors="replace")
            verdict = [m.group(2) for m in map(LIBTEST_LINE.match, text.splitlines()) if m]
            outcome = {"ok": "pass", "FAILED": "fail", "ignored": "skip"}.get(
                verdict[0] if verdict else "", "crash")
            body = re.search(r"^---- \S+ stdout ----\n(.*?)(?=^---- |^failures:$)", text,
                             re.M | re.S)
            done[n]["alone"] = {"outcome": outcome, "raw": verdict[0] if verdict else f"exit {rc}",
                                "detail": body.group(1).strip()[-4000:] if body else ""}
        for n in names:
            results[f"{name}::{n}"] = done.get(n, {"outcome": "not-run", "raw": "not-run",
                                                    "detail": "not run (runner died)"})
    binlist = " ".join(sorted(binaries))
    return results, {"command": f"TEST_PKCS11_MODULE={module} <cryptoki {binlist} test "
                                f"binaries> --test-threads 1"}


# ---------------------------------------------------------------------------------------------
# crypto11 (Go), Debian's golang-github-thalesignite-crypto11-dev, in GOPATH mode


def prepare_crypto11(args):
    if not (CRYPTO11_DIR / "crypto11_test.go").is_file():
        raise SuiteError(f"{CRYPTO11_DIR} has no tests (apt-get install "
                         "golang-github-thalesignite-crypto11-dev)")
    if not shutil.which("go"):
        raise SuiteError("go not found (apt-get install golang-go)")
    version = check(["dpkg-query", "-W", "-f=${Version}",
                     "golang-github-thalesignite-crypto11-dev"]).strip()
    return {"version": f"{version} (Debian)"}


# Left out by --smoke: the tests that take seconds each (seen on key4c: TestThreadedRSA 16 s,
# TestDeleteCertificate 9 s, TestCertificateRequiredArgs 4 s, TestErrorAfterClosed 3 s).
CRYPTO11_SLOW = {"TestThreadedRSA", "TestDeleteCertificate", "TestCertificateRequiredArgs",
                 "TestErrorAfterClosed"}


def run_crypto11(ctx, side, module, tmp, smoke):
    """crypto11's own tests read the module, token label and PIN from a JSON file `config` in
    the package directory: the package is copied to a scratch GOPATH and the file written."""
    label = "crypto11"
    env = fresh_token(side, module, tmp / "token", label)
    pkg = tmp / "gopath" / "src" / "github.com" / "ThalesIgnite" / "crypto11"
    shutil.copytree(CRYPTO11_DIR, pkg)
    (pkg / "config").write_text(json.dumps({"Path": module, "TokenLabel": label,
                                            "Pin": USER_PIN}))
    env.update(GO111MODULE="off", GOPATH=f"{tmp / 'gopath'}:/usr/share/gocode",
               GOCACHE=str(WORK / "go-cache"), CGO_ENABLED="1", GOFLAGS="")
    exe = tmp / "crypto11.test"
    rc, _ = run_logged(["go", "test", "-c", "-o", exe, "."], tmp / "run.log", cwd=pkg, env=env,
                       timeout=1800)
    if rc != 0:
        raise SuiteError(f"go test -c failed; see {tmp / 'run.log'}")
    listing = subprocess.run([exe, "-test.list", "."], capture_output=True, text=True,
                             cwd=pkg, env=env).stdout
    top = [t for t in listing.split() if t.startswith(("Test", "Example"))]
    if smoke:
        top = [t for t in top if t not in CRYPTO11_SLOW]
    # test -> {"action": run|pass|fail|skip|crash, "output": [...]}; subtests are "A/B".
    events, order = {}, []
    for attempt in range(50):
        todo = [t for t in top if t not in events]
        if not todo:
            break
        out = tmp / f"test2json.{attempt}.jsonl"
        rc, timed_out = run_logged(
            ["go", "tool", "test2json", "-t", exe, "-test.v", "-test.count=1",
             "-test.timeout=30m", "-test.run", "^(" + "|".join(todo) + ")$"],
            tmp / "run.log", cwd=pkg, env=env, timeout=2400, stdout_path=out)
        for line in out.read_text(errors="replace").splitlines():
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            test, action = ev.get("Test"), ev.get("Action")
            if not test:
                continue
            if test not in events:
                events[test] = {"action": "run", "output": []}
                order.append(test)
            if action == "output":
                events[test]["output"].append(ev.get("Output", ""))
            elif action in ("pass", "fail", "skip"):
                events[test]["action"] = action
        # A panic in a test ends the whole test binary (test2json still reports the panicking
        # test as failed): that test crashed; tests it interrupted have no outcome; top-level
        # tests not reached run in the next round.
        crashed = [t for t in order if events[t]["action"] != "crash"
                   and any(o.startswith("panic: ") for o in events[t]["output"])]
        for t in crashed:
            events[t]["action"] = "crash"
        if timed_out:
            for t in order:
                if events[t]["action"] == "run":
                    events[t]["action"] = "crash"
                    events[t]["output"].append("(timed out)")
            break
        if rc == 0 or not (crashed or died(rc)):
            break
        if not [t for t in top if t not in events]:
            break
        log(f"   crypto11: the test binary died ({', '.join(crashed) or f'exit {rc}'}); "
            "resuming with the tests it had not reached")
    results = {}
    for t in order + [t for t in top if t not in events]:
        if any(o.startswith(t + "/") for o in order):
            continue  # a parent: its subtests are the tests counted
        rec = events.get(t, {"action": "not-run", "output": []})
        action = "not-run" if rec["action"] == "run" else rec["action"]
        detail = "".join(rec["output"])[-4000:] if action != "pass" else ""
        results[t] = {"outcome": action, "raw": rec["action"], "detail": detail}
    return results, {"command": f"cd <copy of {CRYPTO11_DIR}> && echo '{{\"Path\": \"{module}\", "
                                f"\"TokenLabel\": \"{label}\", \"Pin\": ...}}' >config && "
                                "GO111MODULE=off go test -v ."}


# ---------------------------------------------------------------------------------------------
# pkcs11-check (PyPI): its own test cases, through its own runner


def prepare_pkcs11_check(args):
    python = make_venv(WORK / "pkcs11-check-venv", find_python312(),
                       [f"pkcs11-check=={PKCS11_CHECK}"])
    return {"python": python, "version": PKCS11_CHECK}


def run_pkcs11_check(ctx, side, module, tmp, smoke):
    """`pkcs11-check test`: module and PIN on the command line, the SO PIN from P11TEST_SO_PIN,
    slot index 0, run from an empty directory (no pkcs11_check.toml), no test vectors fetched
    (its fetch-data downloads from outside the package registries)."""
    env = fresh_token(side, module, tmp / "token", "pkcs11-check")
    env["P11TEST_SO_PIN"] = SO_PIN
    run_dir = tmp / "run"
    run_dir.mkdir()
    exe = Path(ctx["python"]).parent / "pkcs11-check"
    cmd = [exe, "test", "--module", module, "--slot", "0", "--pin", USER_PIN, "--output", "json",
           "--output-file", run_dir / "report" / "results.json"]
    if smoke:
        cmd += ["--marker", "smoke"]
    rc, timed_out = run_logged(cmd, tmp / "run.log", cwd=run_dir, env=env, timeout=5400)
    report = run_dir / "report" / "report.jsonl"
    if not report.is_file():
        raise SuiteError(f"pkcs11-check wrote no report (exit {rc}); see {tmp / 'run.log'}")
    summary = run_dir / "report" / "results.json"
    results = parse_pkcs11_check(report, summary)
    meta = {"command": "P11TEST_SO_PIN=... " + " ".join(
        "..." if c == USER_PIN else str(c) for c in cmd[:-2]) + " --output-file DIR/results.json",
        "exit": rc, "timed_out": timed_out}
    if summary.is_file():
        meta["summary"] = json.loads(summary.read_text()).get("summary")
    return results, meta


def short_nodeid(nodeid):
    """pkcs11-check's node ids carry the venv's path: kept from its package on, so that runs on
    other machines compare."""
    i = nodeid.find("pkcs11_check/testcases/")
    return nodeid[i:] if i >= 0 else nodeid


def parse_pkcs11_check(report, summary=None):
    """report.jsonl: pytest TestReport records, one per phase (setup, call, teardown), plus
    the runner's own records. One outcome per test, as the tool counts it (its summary):
    a crash or timeout anywhere wins, then an error in setup/teardown, then the call."""
    phases = {}
    for line in report.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("$report_type") != "TestReport" or not rec.get("nodeid"):
            continue
        phases.setdefault(short_nodeid(rec["nodeid"]), []).append(rec)

    def detail_of(rec):
        if rec.get("wasxfail"):
            return str(rec["wasxfail"])
        lr = rec.get("longrepr")
        if isinstance(lr, dict):
            return (lr.get("reprcrash") or {}).get("message", "") or json.dumps(lr)[-2000:]
        if isinstance(lr, list) and len(lr) == 3:
            return str(lr[2])
        return str(lr or "")

    results = {}
    for nodeid, recs in phases.items():
        by_when = {r.get("when"): r for r in recs}
        special = [r for r in recs if r.get("outcome") in ("crashed", "timeout", "crash_limited")]
        call = by_when.get("call")
        if special:
            raw = special[0]["outcome"]
            outcome, rec = ("not-run" if raw == "crash_limited" else "crash"), special[0]
        elif any(r.get("outcome") == "failed" for r in recs if r.get("when") != "call"):
            rec = next(r for r in recs if r.get("outcome") == "failed")
            raw, outcome = "error", "fail"
        elif by_when.get("setup", {}).get("outcome") == "skipped":
            rec, raw, outcome = by_when["setup"], "skipped", "skip"
        elif call is None and "teardown" not in by_when:
            # Set up, then nothing: the test process died in the call (pkcs11-check re-runs
            # the file without it and counts it as crashed).
            rec, raw, outcome = recs[0], "crashed", "crash"
        elif call is None:
            rec, raw, outcome = recs[0], "incomplete", "fail"
        elif call.get("wasxfail") is not None:
            rec = call
            # pkcs11-check's xfail is a finding (the module differed from the checked
            # expectation: docs/interpreting-results.md), not a pass.
            raw, outcome = ("xfailed", "fail") if call["outcome"] == "skipped" else ("xpassed", "pass")
        else:
            rec, raw = call, call.get("outcome")
            outcome = {"passed": "pass", "skipped": "skip"}.get(raw, "fail")
        results[nodeid] = {"outcome": outcome, "raw": raw, "detail": detail_of(rec)[:2000]}
    # A test file skipped whole (its module skips: "ML_DSA not supported by module") has no
    # test record: its unit's count is the only trace. One "skip" entry per such file, named
    # by the file, as the tool's own summary counts it.
    if summary is not None and Path(summary).is_file():
        for unit in json.loads(Path(summary).read_text()).get("units", []):
            path = short_nodeid(unit.get("target", ""))
            have = sum(1 for n, r in results.items()
                       if n.startswith(path + "::") and r["raw"] == "skipped")
            for i in range(have, unit.get("counts", {}).get("skipped", 0)):
                reasons = "; ".join(unit.get("skip_reasons") or {})
                results[path if i == have else f"{path}#{i}"] = {
                    "outcome": "skip", "raw": "skipped", "detail": f"file skipped: {reasons}"}
    return results


# ---------------------------------------------------------------------------------------------


PREPARE = {"python-pkcs11": prepare_python_pkcs11, "pykcs11": prepare_pykcs11,
           "cryptoki": prepare_cryptoki, "crypto11": prepare_crypto11,
           "pkcs11-check": prepare_pkcs11_check}
RUN = {"python-pkcs11": run_python_pkcs11, "pykcs11": run_pykcs11, "cryptoki": run_cryptoki,
       "crypto11": run_crypto11, "pkcs11-check": run_pkcs11_check}


def counts(tests):
    c = {o: 0 for o in OUTCOMES}
    for t in tests.values():
        c[t["outcome"]] += 1
    return c


def cell(run):
    if run is None:
        return "not run"
    if run.get("error"):
        return "could not run"
    c = run["counts"]
    return f"{c['pass']} / {c['fail']} / {c['skip']} / {c['crash']} / {c['not-run']}"


def table(results, sides):
    head = "| suite | " + " | ".join(f"{s} pass / fail / skip / crash / not run" for s in sides) + " |"
    rows = [head, "|---" * (len(sides) + 1) + "|"]
    for suite, entry in results["suites"].items():
        rows.append(f"| {suite} {entry.get('version', '')} | "
                    + " | ".join(cell(entry["runs"].get(s)) for s in sides) + " |")
    return "\n".join(rows)


def fill_not_run(results):
    """A test one module's run has and the other's never reached (a Go test binary that
    panicked takes the subtests it had not started with it) is "not-run" on the other."""
    for suite, entry in results["suites"].items():
        # pkcs11-check collects per module (its parameters follow the advertised mechanisms):
        # a test only one module's run has is no sign of a crash there.
        if suite == "pkcs11-check":
            continue
        runs = [r for r in entry["runs"].values() if "tests" in r]
        names = set().union(*(r["tests"] for r in runs)) if runs else set()
        for run in runs:
            have = set(run["tests"])
            for name in sorted(names - have):
                # A Go test may be one (skipped) leaf here and have subtests there: the same
                # test, counted once on each side.
                if any(name.startswith(h + "/") or h.startswith(name + "/") for h in have):
                    continue
                # A pkcs11-check file skipped whole here has one entry, named by the file.
                if "::" in name and name.split("::")[0] in have:
                    continue
                run["tests"][name] = {"outcome": "not-run", "raw": "absent",
                                      "detail": "never reached here; the other module's run has it"}
            run["counts"] = counts(run["tests"])


def diff_lines(results):
    """Tests that fail (or crash) on key4c and pass on SoftHSM2."""
    lines = []
    for suite, entry in results["suites"].items():
        k, s = entry["runs"].get("key4c"), entry["runs"].get("softhsm2")
        if not k or not s or k.get("error") or s.get("error"):
            continue
        for name, t in k["tests"].items():
            other = s["tests"].get(name)
            if t["outcome"] in ("fail", "crash", "not-run") and other and other["outcome"] == "pass":
                lines.append(f"{suite}\t{name}\t{t['outcome']}")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", default=str(ROOT / "target/release/libkey4c_pkcs11.so"),
                    help="the key4c module (default: target/release/libkey4c_pkcs11.so)")
    ap.add_argument("--softhsm", default="/usr/lib/softhsm/libsofthsm2.so",
                    help="SoftHSM2's module (default: %(default)s)")
    ap.add_argument("--suite", action="append", choices=SUITES,
                    help="run this suite (repeatable; default: all)")
    ap.add_argument("--side", action="append", choices=["key4c", "softhsm2"],
                    help="run on this module only (repeatable; default: both)")
    ap.add_argument("--smoke", action="store_true",
                    help="a fast subset of each suite (pkcs11-check: its `smoke` marker)")
    ap.add_argument("--out", default=str(WORK / "results"),
                    help="where results.json, table.md and the logs go (default: %(default)s)")
    ap.add_argument("--python", default=sys.executable,
                    help="the interpreter for the python suites' venv (default: this one)")
    args = ap.parse_args()

    suites = args.suite or SUITES
    sides = args.side or ["key4c", "softhsm2"]
    modules = {"key4c": os.path.abspath(args.module), "softhsm2": os.path.abspath(args.softhsm)}
    for side in sides:
        if not os.path.isfile(modules[side]):
            sys.exit(f"{side} module not found: {modules[side]}")
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    WORK.mkdir(parents=True, exist_ok=True)
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "smoke": args.smoke,
               "modules": {s: modules[s] for s in sides},
               "pins": {"user": USER_PIN, "so": SO_PIN}, "suites": {}}
    broken = []
    for suite in suites:
        entry = results["suites"].setdefault(suite, {"runs": {}})
        try:
            ctx = PREPARE[suite](args)
            entry["version"] = ctx["version"]
        except SuiteError as e:
            log(f"== {suite}: could not install: {e}")
            entry["error"] = str(e)
            for side in sides:
                entry["runs"][side] = {"error": str(e)}
            broken.append(suite)
            continue
        for side in sides:
            tmp = Path(tempfile.mkdtemp(prefix=f"cs-{suite}-{side}-"))
            log(f"== {suite} {ctx['version']} on {side} ({modules[side]}) in {tmp}")
            t0 = time.monotonic()
            try:
                tests, meta = RUN[suite](ctx, side, modules[side], tmp, args.smoke)
                run = {"counts": counts(tests), **meta, "tests": tests}
            except SuiteError as e:
                log(f"   could not run: {e}")
                run = {"error": str(e)}
                broken.append(f"{suite}/{side}")
            run["seconds"] = round(time.monotonic() - t0, 1)
            entry["runs"][side] = run
            # Logs (and key4c's log) are kept beside the results; the token is thrown away.
            logdir = out / "logs" / f"{suite}-{side}"
            logdir.mkdir(parents=True)
            for f in ["run.log", "alone.log", "token/key4c.log", "run/report/report.jsonl",
                      "run/report/results.json"]:
                if (tmp / f).is_file():
                    shutil.copy(tmp / f, logdir / Path(f).name)
            if not os.environ.get("KEEP_TMP"):
                shutil.rmtree(tmp, ignore_errors=True)
            if "counts" in run:
                c = run["counts"]
                log(f"   {side}: pass {c['pass']}, fail {c['fail']}, skip {c['skip']}, "
                    f"crash {c['crash']}, not run {c['not-run']} ({run['seconds']} s)")
            (out / "results.json").write_text(json.dumps(results, indent=1))
    fill_not_run(results)
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    (out / "results.json").write_text(json.dumps(results, indent=1))
    md = table(results, sides)
    (out / "table.md").write_text(md + "\n")
    diff = diff_lines(results)
    (out / "key4c-only-failures.tsv").write_text("".join(line + "\n" for line in diff))
    log("")
    log(md)
    log(f"\n{len(diff)} tests fail, crash or are not reached on key4c and pass on SoftHSM2 "
        f"({out / 'key4c-only-failures.tsv'}); per-test outcomes: {out / 'results.json'}")
    if broken:
        log(f"could not run: {', '.join(broken)}")
        sys.exit(2)


if __name__ == "__main__":
    main()
