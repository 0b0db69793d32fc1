//! One token, many processes (issue 13), through the built module: the store goes round in
//! the order it was asked for; a stopped holder makes waiters give up after the configured
//! wait with a line that says so, and nothing is lost once it is continued; silent and
//! abandoned connections to a holder's socket cost nothing; a holder killed in the middle of
//! the queue (and a waiter killed in it) hold nobody up; two processes with the same PID in
//! two PID namespaces (containers sharing a store volume) are told apart.
//!
//! Each process of a scenario is a *worker*: this test binary started again, which
//! initialises the module, logs the User in, and then runs the commands the test writes to
//! files (`create LABEL`, `exit`), answering each in a file of its own with the return code
//! and how long the call took.

// `call!` passes raw pointers to the module: that is what these tests are for.
#![allow(clippy::macro_metavars_in_unsafe)]

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::ptr::null_mut;
use std::time::{Duration, Instant};

use common::*;

/// Environment variable naming the worker a process runs as.
const WORKER: &str = "KEY4C_TEST_WORKER";
/// How long a test waits for anything a worker should do at once.
const PATIENCE: Duration = Duration::from_secs(60);

/// The worker's side: commands in `<name>.<n>.cmd`, answers in `<name>.<n>.out`.
fn worker_main(name: &str) {
    let dir = store_dir().parent().unwrap().to_path_buf();
    let lib = Lib::load();
    lib.init();
    let h = lib.user_session();
    std::fs::write(
        dir.join(format!("{name}.ready")),
        std::process::id().to_string(),
    )
    .unwrap();
    for n in 0.. {
        let cmd = dir.join(format!("{name}.{n}.cmd"));
        let text = loop {
            match std::fs::read_to_string(&cmd) {
                Ok(text) if text.ends_with('\n') => break text,
                _ => std::thread::sleep(Duration::from_millis(2)),
            }
        };
        let started = Instant::now();
        let rv = match text.trim().split_once(' ') {
            Some(("hammer", threads)) => {
                // Threads that create objects back to back until `<name>.stop` exists.
                let stop = dir.join(format!("{name}.stop"));
                for t in 0..threads.parse::<usize>().unwrap() {
                    let (lib, stop) = (&*Box::leak(Box::new(Lib::load())), stop.clone());
                    std::thread::spawn(move || {
                        let h = lib.open_rw();
                        for k in 0.. {
                            if stop.exists() {
                                break;
                            }
                            let label = format!("hammer-{t}-{k}");
                            let made = lib.create(
                                h,
                                &[
                                    (CKA_CLASS, A::U(CKO_DATA)),
                                    (CKA_TOKEN, A::B(true)),
                                    (CKA_LABEL, A::S(label.as_bytes())),
                                ],
                            );
                            assert!(made.is_ok(), "{label}: {made:?}");
                        }
                    });
                }
                CKR_OK
            }
            Some(("destroy", label)) => {
                let found = lib.find(h, &[(CKA_LABEL, A::S(label.as_bytes()))]);
                assert_eq!(found.len(), 1, "{label}");
                call!(lib, C_DestroyObject, h, found[0])
            }
            Some(("relabel", labels)) => {
                let (old, new) = labels.split_once(' ').unwrap();
                let found = lib.find(h, &[(CKA_LABEL, A::S(old.as_bytes()))]);
                assert_eq!(found.len(), 1, "{old}");
                lib.set_attrs(h, found[0], &[(CKA_LABEL, A::S(new.as_bytes()))])
            }
            Some(("list", "data")) => {
                // What this process sees: its own view, reloaded from what others wrote.
                let mut seen: Vec<String> = lib
                    .find(h, &[(CKA_CLASS, A::U(CKO_DATA))])
                    .into_iter()
                    .map(|o| String::from_utf8(lib.attr(h, o, CKA_LABEL)).unwrap())
                    .collect();
                seen.sort();
                std::fs::write(dir.join(format!("{name}.{n}.list")), seen.join("\n")).unwrap();
                CKR_OK
            }
            Some(("create", label)) => {
                match lib.create(
                    h,
                    &[
                        (CKA_CLASS, A::U(CKO_DATA)),
                        (CKA_TOKEN, A::B(true)),
                        (CKA_PRIVATE, A::B(false)),
                        (CKA_LABEL, A::S(label.as_bytes())),
                        (CKA_VALUE, A::S(b"issue 13")),
                    ],
                ) {
                    Ok(_) => CKR_OK,
                    Err(rv) => rv,
                }
            }
            _ => {
                assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
                return;
            }
        };
        let answer = format!("{} {}\n", ckr_name(rv), started.elapsed().as_micros());
        let out = dir.join(format!("{name}.{n}.out"));
        std::fs::write(out.with_extension("tmp"), answer).unwrap();
        std::fs::rename(out.with_extension("tmp"), out).unwrap();
    }
}

/// A worker process, seen from the test.
struct Worker {
    name: String,
    dir: PathBuf,
    child: Child,
    pid: u32,
    sent: usize,
}

impl Worker {
    /// Starts a worker (through `wrap`, a command line put before the test binary, if any)
    /// and waits until it is logged in.
    fn start(test: &str, name: &str, wrap: &[&str]) -> Worker {
        let dir = store_dir().parent().unwrap().to_path_buf();
        let exe = std::env::current_exe().unwrap();
        let mut cmd = match wrap.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args([test, "--exact", "--nocapture", "--test-threads", "1"])
            .env(WORKER, name)
            .env("KEY4C_LOG", "debug")
            .env("KEY4C_LOG_FILE", dir.join(format!("{name}.log")))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let child = cmd.spawn().expect("spawn a worker");
        let ready = dir.join(format!("{name}.ready"));
        let pid = wait_for(&format!("{name} logged in"), || {
            std::fs::read_to_string(&ready).ok()?.parse().ok()
        });
        Worker {
            name: name.into(),
            dir,
            child,
            pid,
            sent: 0,
        }
    }

    /// Sends a command without waiting for its answer; returns its number.
    fn send(&mut self, cmd: &str) -> usize {
        let n = self.sent;
        self.sent += 1;
        std::fs::write(
            self.dir.join(format!("{}.{n}.cmd", self.name)),
            format!("{cmd}\n"),
        )
        .unwrap();
        n
    }

    /// The answer to command `n`: the return code's name and how long the call took.
    fn answer(&self, n: usize) -> (String, Duration) {
        let out = self.dir.join(format!("{}.{n}.out", self.name));
        let text = wait_for(&format!("{} to answer command {n}", self.name), || {
            std::fs::read_to_string(&out).ok()
        });
        let (rv, us) = text.trim().split_once(' ').unwrap();
        (rv.to_string(), Duration::from_micros(us.parse().unwrap()))
    }

    fn run(&mut self, cmd: &str) -> (String, Duration) {
        let n = self.send(cmd);
        self.answer(n)
    }

    /// `create LABEL`, which must succeed.
    fn create(&mut self, label: &str) -> Duration {
        let (rv, took) = self.run(&format!("create {label}"));
        assert_eq!(rv, "CKR_OK", "{} creating {label}", self.name);
        took
    }

    fn signal(&self, signal: libc::c_int) {
        assert_eq!(unsafe { libc::kill(self.pid as libc::pid_t, signal) }, 0);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join(format!("{}.log", self.name))).unwrap_or_default()
    }

    /// Ends the worker and waits for it to exit cleanly.
    fn finish(mut self) {
        self.send("exit");
        let status = wait_for(&format!("{} to exit", self.name), || {
            self.child.try_wait().unwrap()
        });
        assert!(status.success(), "{} exited with {status}", self.name);
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it gives a value, or fails the test naming `what` after [`PATIENCE`].
fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The tickets in the store's queue (processes waiting for the store).
fn queued() -> usize {
    std::fs::read_dir(store_dir().join(key4c_pkcs11::store::QUEUE_DIR))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name != "next" && !name.starts_with('.')
                })
                .count()
        })
        .unwrap_or(0)
}

fn wait_queued(n: usize) {
    wait_for(&format!("{n} processes in the store's queue"), || {
        (queued() == n).then_some(())
    });
}

/// A scenario of workers on a provisioned token in a store of its own (`config` added to
/// the configuration); in a worker process, the worker's side instead.
fn scenario(name: &str, config: &str, body: impl FnOnce()) {
    if let Ok(worker) = std::env::var(WORKER) {
        return worker_main(&worker);
    }
    isolated(name, config, || {
        provision();
        body()
    });
}

/// Provisions the token in this process, then lets it go.
fn provision() {
    let lib = Lib::load();
    lib.init();
    lib.provision();
    assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
}

/// The data objects on the token: label → CKA_UNIQUE_ID (the store's record key, which grows
/// with every object made).
fn data_objects() -> std::collections::BTreeMap<String, u64> {
    let lib = Lib::load();
    lib.init();
    let h = lib.user_session();
    let found = lib.find(h, &[(CKA_CLASS, A::U(CKO_DATA))]);
    let objects = found
        .into_iter()
        .map(|o| {
            let label = String::from_utf8(lib.attr(h, o, CKA_LABEL)).unwrap();
            let id = String::from_utf8(lib.attr(h, o, CKA_UNIQUE_ID)).unwrap();
            (label, u64::from_str_radix(&id, 16).unwrap())
        })
        .collect();
    assert_rv!(call!(lib, C_Finalize, null_mut()), CKR_OK);
    objects
}

fn labels(objects: &std::collections::BTreeMap<String, u64>) -> Vec<&str> {
    objects.keys().map(String::as_str).collect()
}

/// Three processes ask for the store in turn while its holder is stopped: once it is
/// continued, they have it in the order they asked.
#[test]
fn the_store_goes_round_in_the_order_it_was_asked_for() {
    const NAME: &str = "the_store_goes_round_in_the_order_it_was_asked_for";
    scenario(NAME, "store_wait_ms = 60000", || {
        let mut a = Worker::start(NAME, "a", &[]);
        let mut b = Worker::start(NAME, "b", &[]);
        let mut c = Worker::start(NAME, "c", &[]);
        let mut holder = Worker::start(NAME, "holder", &[]);
        holder.create("holder-1");
        holder.signal(libc::SIGSTOP);
        let mut asked = Vec::new();
        for (i, w) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
            asked.push(w.send(&format!("create {}", w.name)));
            wait_queued(i + 1);
        }
        holder.signal(libc::SIGCONT);
        for (w, n) in [&a, &b, &c].into_iter().zip(asked) {
            assert_eq!(w.answer(n).0, "CKR_OK", "{}", w.name);
        }
        assert_eq!(queued(), 0, "tickets left in the queue");
        for w in [a, b, c, holder] {
            w.finish();
        }
        let objects = data_objects();
        assert_eq!(labels(&objects), ["a", "b", "c", "holder-1"]);
        assert!(
            objects["a"] < objects["b"] && objects["b"] < objects["c"],
            "made out of order: {objects:?}"
        );
    });
}

/// A holder stopped by SIGSTOP: the first waiter gives up after store_wait_ms with a line
/// naming the stopped process and the fix, the one behind it with its place in the queue;
/// continued, every process works again and nothing acknowledged is lost.
#[test]
fn a_stopped_holder_is_named_and_nothing_is_lost() {
    const NAME: &str = "a_stopped_holder_is_named_and_nothing_is_lost";
    scenario(NAME, "store_wait_ms = 1500", || {
        let mut a = Worker::start(NAME, "a", &[]);
        let mut b = Worker::start(NAME, "b", &[]);
        let mut holder = Worker::start(NAME, "holder", &[]);
        holder.create("holder-1");
        holder.signal(libc::SIGSTOP);
        let first = a.send("create a-refused");
        wait_queued(1);
        let second = b.send("create b-refused");
        let (rv, took) = a.answer(first);
        assert_eq!(rv, "CKR_DEVICE_ERROR");
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_millis(4000),
            "gave up after {took:?}, store_wait_ms = 1500"
        );
        let stopped = format!(
            "process {} ({}), which is stopped (SIGSTOP, Ctrl-Z or a debugger): continue it (`kill -CONT {}`) or end it",
            holder.pid,
            std::env::current_exe().unwrap().display(),
            holder.pid
        );
        let log = a.log();
        assert!(
            log.contains(&format!(
                "it is held by {stopped}, and the holder did not hand it over within the wait of 1500 ms (store_wait_ms)"
            )),
            "{log}"
        );
        assert_eq!(b.answer(second).0, "CKR_DEVICE_ERROR");
        let log = b.log();
        assert!(
            log.contains("1 process was waiting for it before this one and the wait of 1500 ms (store_wait_ms) ran out"),
            "{log}"
        );
        assert!(
            log.contains(&format!("the store is held by {stopped}")),
            "{log}"
        );
        holder.signal(libc::SIGCONT);
        a.create("a-1");
        holder.create("holder-2");
        b.create("b-1");
        for w in [a, b, holder] {
            w.finish();
        }
        assert_eq!(
            labels(&data_objects()),
            ["a-1", "b-1", "holder-1", "holder-2"]
        );
    });
}

/// 100 connections that never send anything, and 20 requests abandoned before the holder
/// could answer them, to the holder's socket: a real request is served at once, and the
/// holder never lets go of the store for nobody.
#[test]
fn silent_and_abandoned_connections_cost_nothing() {
    const NAME: &str = "silent_and_abandoned_connections_cost_nothing";
    scenario(NAME, "", || {
        use std::io::Write;
        use std::os::fd::AsRawFd;
        use std::os::unix::net::UnixStream;
        let mut a = Worker::start(NAME, "a", &[]);
        let mut holder = Worker::start(NAME, "holder", &[]);
        holder.create("holder-1");
        let socket = {
            let text = std::fs::read_to_string(store_dir().join(key4c_pkcs11::store::HOLDER_FILE))
                .unwrap();
            assert!(text.starts_with(&format!("pid {} (", holder.pid)), "{text}");
            let instance = text
                .lines()
                .find_map(|l| l.strip_prefix("instance "))
                .expect("the holder's instance");
            store_dir().join(format!("key4c-{instance}.sock"))
        };
        let db = std::fs::File::open(store_dir().join("db")).unwrap();
        let held_by_someone =
            || unsafe { libc::flock(db.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0;
        // Abandoned: the askers gave up (or died) while the holder was not answering.
        holder.signal(libc::SIGSTOP);
        for _ in 0..20 {
            let mut abandoned = UnixStream::connect(&socket).unwrap();
            abandoned.write_all(b"R").unwrap();
        }
        holder.signal(libc::SIGCONT);
        wait_for("the holder to drop the abandoned requests", || {
            holder
                .log()
                .contains("a request for the store was given up before it was answered")
                .then_some(())
        });
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            held_by_someone(),
            "the holder let go of the store for nobody"
        );
        assert!(!holder.log().contains("handed over"), "{}", holder.log());
        // A create that takes the store from the holder, without and then with 100 silent
        // connections to the holder's socket.
        let mut handovers = |label: &str| -> Vec<Duration> {
            (0..5)
                .map(|i| {
                    let took = a.create(&format!("{label}-a-{i}"));
                    holder.create(&format!("{label}-holder-{i}"));
                    took
                })
                .collect()
        };
        let quiet = handovers("quiet");
        let silent: Vec<UnixStream> = (0..100)
            .map(|_| UnixStream::connect(&socket).unwrap())
            .collect();
        let crowded = handovers("crowded");
        drop(silent);
        eprintln!("handovers without / with 100 silent connections: {quiet:?} / {crowded:?}");
        for took in crowded {
            assert!(
                took < Duration::from_secs(1),
                "a create behind 100 silent connections took {took:?}"
            );
        }
        for w in [a, holder] {
            w.finish();
        }
        assert_eq!(data_objects().len(), 21);
    });
}

/// The holder is killed (SIGKILL) while three processes queue for the store, and so is the
/// one in the middle of the queue: the others have the store in their order, nothing the
/// holder acknowledged is lost, and the queue is left empty.
#[test]
fn holder_and_a_waiter_killed_in_the_middle_of_the_queue() {
    const NAME: &str = "holder_and_a_waiter_killed_in_the_middle_of_the_queue";
    scenario(NAME, "store_wait_ms = 60000", || {
        let mut a = Worker::start(NAME, "a", &[]);
        let mut b = Worker::start(NAME, "b", &[]);
        let mut c = Worker::start(NAME, "c", &[]);
        let mut holder = Worker::start(NAME, "holder", &[]);
        holder.create("holder-1");
        holder.create("holder-2");
        holder.signal(libc::SIGSTOP);
        let mut asked = Vec::new();
        for (i, w) in [&mut a, &mut b, &mut c].into_iter().enumerate() {
            asked.push(w.send(&format!("create {}", w.name)));
            wait_queued(i + 1);
        }
        b.signal(libc::SIGKILL);
        holder.signal(libc::SIGKILL);
        assert_eq!(a.answer(asked[0]).0, "CKR_OK");
        assert_eq!(c.answer(asked[2]).0, "CKR_OK");
        assert_eq!(queued(), 0, "tickets left in the queue");
        for w in [a, c] {
            w.finish();
        }
        drop(b);
        drop(holder);
        let objects = data_objects();
        assert_eq!(labels(&objects), ["a", "c", "holder-1", "holder-2"]);
        assert!(
            objects["a"] < objects["c"],
            "made out of order: {objects:?}"
        );
    });
}

/// Two processes that are both PID 1, each in a PID namespace of its own (two containers
/// sharing the store's volume): they hand the store back and forth like any two processes.
#[test]
fn the_same_pid_in_two_containers_is_two_processes() {
    const NAME: &str = "the_same_pid_in_two_containers_is_two_processes";
    if !require::check(&[
        require::root("new PID namespaces"),
        require::tool("unshare", "apt-get install util-linux"),
    ]) {
        return;
    }
    scenario(NAME, "", || {
        let container = ["unshare", "--pid", "--fork", "--mount-proc"];
        let mut a = Worker::start(NAME, "a", &container);
        let mut b = Worker::start(NAME, "b", &container);
        assert_eq!((a.pid, b.pid), (1, 1), "not PID 1 in their own namespaces");
        a.create("a-1");
        b.create("b-1");
        a.create("a-2");
        b.create("b-2");
        let holder =
            std::fs::read_to_string(store_dir().join(key4c_pkcs11::store::HOLDER_FILE)).unwrap();
        assert!(holder.starts_with("pid 1 ("), "{holder}");
        for w in [a, b] {
            w.finish();
        }
        assert_eq!(labels(&data_objects()), ["a-1", "a-2", "b-1", "b-2"]);
    });
}

/// Two copies of the module in one process (two `dlopen`s of two paths, as PyKCS11's
/// `test_multiple_load` does): each copy is an instance of its own, and they share the token
/// like two processes, in turn.
#[test]
fn two_copies_of_the_module_in_one_process_share_the_token() {
    isolated(
        "two_copies_of_the_module_in_one_process_share_the_token",
        "store_wait_ms = 5000",
        || {
            provision();
            let copy = store_dir().parent().unwrap().join("copy-of-the-module.so");
            std::fs::copy(module_path(), &copy).unwrap();
            let first = Lib::load();
            let second = Lib::load_from(&copy);
            first.init();
            second.init();
            let sessions = [first.user_session(), second.user_session()];
            for round in 0..3 {
                for (i, (lib, h)) in [&first, &second].into_iter().zip(sessions).enumerate() {
                    let started = Instant::now();
                    let created = lib.create(
                        h,
                        &[
                            (CKA_CLASS, A::U(CKO_DATA)),
                            (CKA_TOKEN, A::B(true)),
                            (CKA_LABEL, A::S(format!("copy{i}-{round}").as_bytes())),
                        ],
                    );
                    assert!(created.is_ok(), "copy {i}, round {round}: {created:?}");
                    assert!(
                        started.elapsed() < Duration::from_secs(2),
                        "copy {i} waited {:?} for the store",
                        started.elapsed()
                    );
                }
            }
            // Each copy sees what the other made.
            for (lib, h) in [&first, &second].into_iter().zip(sessions) {
                assert_eq!(lib.find(h, &[(CKA_CLASS, A::U(CKO_DATA))]).len(), 6);
            }
            assert_rv!(call!(second, C_Finalize, null_mut()), CKR_OK);
            assert_rv!(call!(first, C_Finalize, null_mut()), CKR_OK);
            assert_eq!(data_objects().len(), 6);
        },
    );
}

/// `key4c store status` names the holder and its state, and the processes queued, in order,
/// without opening the store.
#[test]
fn store_status_shows_the_holder_and_the_queue() {
    const NAME: &str = "store_status_shows_the_holder_and_the_queue";
    scenario(NAME, "store_wait_ms = 60000", || {
        let status = || -> serde_json::Value {
            let out = Command::new(env!("CARGO_BIN_EXE_key4c"))
                .args(["store", "status", "--json"])
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            serde_json::from_slice(&out.stdout).unwrap()
        };
        let mut a = Worker::start(NAME, "a", &[]);
        let mut b = Worker::start(NAME, "b", &[]);
        let mut holder = Worker::start(NAME, "holder", &[]);
        holder.create("holder-1");
        let seen = status();
        assert_eq!(seen["holder"]["pid"], holder.pid);
        assert_eq!(seen["holder"]["state"], "running");
        assert_eq!(seen["holder"]["answers"], true);
        assert_eq!(seen["queue"], serde_json::json!([]));
        holder.signal(libc::SIGSTOP);
        let first = a.send("create a");
        wait_queued(1);
        let second = b.send("create b");
        wait_queued(2);
        let seen = status();
        assert_eq!(seen["holder"]["state"], "stopped");
        let queue = seen["queue"].as_array().unwrap();
        assert_eq!(
            queue.iter().map(|q| q["pid"].clone()).collect::<Vec<_>>(),
            [a.pid, b.pid]
        );
        assert!(queue[0]["ticket"].as_u64() < queue[1]["ticket"].as_u64());
        holder.signal(libc::SIGCONT);
        assert_eq!(a.answer(first).0, "CKR_OK");
        assert_eq!(b.answer(second).0, "CKR_OK");
        assert_eq!(status()["queue"], serde_json::json!([]));
        for w in [a, b, holder] {
            w.finish();
        }
    });
}

/// A holder whose four threads write back to back, without a pause: another process still has
/// the store within its turn (the holder's slice and the operations in flight), so a busy
/// process cannot keep the store from the others.
#[test]
fn a_busy_holder_cannot_keep_the_store() {
    const NAME: &str = "a_busy_holder_cannot_keep_the_store";
    scenario(NAME, "", || {
        let mut a = Worker::start(NAME, "a", &[]);
        let mut busy = Worker::start(NAME, "busy", &[]);
        assert_eq!(busy.run("hammer 4").0, "CKR_OK");
        std::thread::sleep(Duration::from_millis(300));
        let took: Vec<Duration> = (0..5).map(|i| a.create(&format!("a-{i}"))).collect();
        std::fs::write(store_dir().parent().unwrap().join("busy.stop"), b"").unwrap();
        for t in &took {
            assert!(
                *t < Duration::from_secs(2),
                "a create waited {t:?} for a busy holder: {took:?}"
            );
        }
        for w in [a, busy] {
            w.finish();
        }
        let objects = data_objects();
        assert!(
            (0..5).all(|i| objects.contains_key(&format!("a-{i}"))),
            "{:?}",
            labels(&objects)
        );
    });
}

/// What another process changed (created, changed, destroyed) is what this one sees after it
/// takes the store back, reloaded from the store's journal of changes, not object by object.
#[test]
fn another_process_sees_exactly_what_changed() {
    const NAME: &str = "another_process_sees_exactly_what_changed";
    scenario(NAME, "", || {
        let mut a = Worker::start(NAME, "a", &[]);
        let mut b = Worker::start(NAME, "b", &[]);
        for label in ["x1", "x2", "x3"] {
            a.create(label);
        }
        b.create("y1");
        assert_eq!(b.run("relabel x1 x1-renamed").0, "CKR_OK");
        assert_eq!(b.run("destroy x2").0, "CKR_OK");
        a.create("x4");
        let n = a.send("list data");
        assert_eq!(a.answer(n).0, "CKR_OK");
        let seen = std::fs::read_to_string(a.dir.join(format!("a.{n}.list"))).unwrap();
        assert_eq!(seen, "x1-renamed\nx3\nx4\ny1");
        let log = a.log();
        assert!(
            log.contains("changed objects (other processes wrote to it)"),
            "{log}"
        );
        assert!(!log.contains("every object"), "{log}");
        for w in [a, b] {
            w.finish();
        }
        assert_eq!(labels(&data_objects()), ["x1-renamed", "x3", "x4", "y1"]);
    });
}
