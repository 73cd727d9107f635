//! A smoke run of every lab script in labs/: each must run unattended, show
//! what its exercise is about, and leave nothing behind, also when it is
//! interrupted. Scripts that need root or tcpdump may skip (exit 77) where
//! those are missing, never where they are present, as in CI.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::*;

/// Exit status of a script that skipped.
const SKIPPED: i32 = 77;

fn lab(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("labs").join(script)
}

/// A fresh output folder for one run.
fn out_dir(script: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tcpechod-lab-{}-{script}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(script: &str, out: &Path) -> Command {
    let mut command = Command::new("bash");
    command.arg(lab(script)).env("TCPECHOD", SERVER).env("TCPECHO", CLIENT).env("LAB_OUT", out);
    // English unless asked otherwise (smoke_in), whatever this machine's locale.
    command.env("LANG", "C").env_remove("LC_ALL").env_remove("LC_MESSAGES");
    command
}

/// Processes that still hold a file in `dir` open (the logs a script made).
fn holders_of(dir: &Path) -> Vec<i32> {
    all_processes()
        .into_iter()
        .filter(|p| {
            fs::read_dir(format!("/proc/{}/fd", p.pid)).is_ok_and(|fds| {
                fds.filter_map(|fd| fs::read_link(fd.ok()?.path()).ok()).any(|target| target.starts_with(dir))
            })
        })
        .map(|p| p.pid)
        .collect()
}

/// Runs a script to the end, in English, and checks that its output shows
/// `expected`. `needs_root` and `needs_tcpdump` say what it requires.
fn smoke(script: &str, needs_root: bool, needs_tcpdump: bool, expected: &[&str]) {
    smoke_in("C", script, needs_root, needs_tcpdump, expected);
}

/// The same in the language of `lang` (a LANG value): Spanish for es_*,
/// English otherwise. Every explanation is in that language, plurals too.
fn smoke_in(lang: &str, script: &str, needs_root: bool, needs_tcpdump: bool, expected: &[&str]) {
    let out = out_dir(script);
    let mut command = command(script, &out);
    command.env("LANG", lang);
    command.stdin(Stdio::null());
    let (tx, rx) = mpsc::channel();
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run bash");
    let pid = child.id() as i32;
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(output) => output.expect("wait for the script"),
        Err(_) => {
            signal(pid, libc::SIGINT);
            panic!("{script} did not finish in time");
        }
    };
    let text =
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    let can_run = (!needs_root || is_root()) && (!needs_tcpdump || have("tcpdump"));
    if output.status.code() == Some(SKIPPED) {
        assert!(!can_run, "{script} skipped although it could run here:\n{text}");
        eprintln!("{script}: {}", text.lines().find(|l| l.contains("SKIPPED")).unwrap_or("skipped"));
        let _ = fs::remove_dir_all(&out);
        return;
    }
    assert_eq!(output.status.code(), Some(0), "{script} failed:\n{text}");
    let (marker, other) =
        if lang.starts_with("es") { (">> FÍJATE:", ">> LOOK:") } else { (">> LOOK:", ">> FÍJATE:") };
    assert!(text.contains(marker), "{script} says what to look at, with {marker:?}:\n{text}");
    assert!(!text.contains(other), "{script} speaks one language only:\n{text}");
    for wrong in ["got back 1 lines", "1 children", "1 líneas", "1 hijos"] {
        assert!(!text.contains(wrong), "{script} gets its plurals right ({wrong:?}):\n{text}");
    }
    for phrase in expected {
        assert!(text.contains(phrase), "{script} should show {phrase:?}:\n{text}");
    }
    // What the script killed at its end goes at once, though not at the
    // very instant the script exits; what it left running would stay.
    wait_until(&format!("{script}'s processes to stop"), || holders_of(&out).is_empty().then_some(()));
    let _ = fs::remove_dir_all(&out);
}

#[test]
fn lab_01_clients() {
    smoke_in(
        "es_ES.UTF-8",
        "01-clients.sh",
        false,
        false,
        &[
            "finished: 26 bytes echoed",
            "dos clientes a la vez:",
            "dos clientes a la vez, servidor secuencial:",
        ],
    );
}

#[test]
fn lab_02_tcpdump() {
    smoke("02-tcpdump.sh", true, true, &["Flags [S.]", "Flags [F.]", "Flags [R]", "02-tcpdump.txt"]);
}

#[test]
fn lab_02_namespaces() {
    smoke("02-namespaces.sh", true, false, &["accepted 10.80.1.2:", "accepted 10.80.2.2:"]);
}

#[test]
fn lab_03_netstat() {
    smoke(
        "03-netstat.sh",
        false,
        false,
        &["LISTEN", "ESTAB", "TIME-WAIT", "timer:(timewait,", "ip_local_port_range"],
    );
}

#[test]
fn lab_04_misbehaving_clients() {
    let mut expected =
        vec!["is anybody there?", "exited with status 4: connection reset", "exit status 124", "WCHAN"];
    if is_root() {
        // Where each child sleeps, told apart by /proc/PID/stack.
        expected.extend(["sk_wait_data", "sk_stream_wait_memory"]);
    }
    smoke("04-misbehaving-clients.sh", false, false, &expected);
}

#[test]
fn lab_05_zombies() {
    smoke_in(
        "es_ES.UTF-8",
        "05-zombies.sh",
        false,
        false,
        &["<defunct>", "status: children=0 zombies=3 accepted=3 reaped=0", "installing the reaper"],
    );
}

#[test]
fn lab_06_sigpipe() {
    smoke(
        "06-sigpipe.sh",
        false,
        false,
        &[
            "killed by signal 13 (SIGPIPE)",
            "bytes echoed (broken pipe: SIGPIPE ignored",
            "bytes echoed (broken pipe: SIGPIPE caught (count=1)",
            "sigpipe=1 killed=0",
        ],
    );
}

#[test]
fn lab_07_shutdown() {
    smoke(
        "07-shutdown.sh",
        false,
        false,
        &[
            "sent SIGTERM to child",
            "stopped reading on SIGTERM",
            "killed=1",
            "grace period of 1 s over",
            "kill -INT -- -",
            "this time the child is gone too",
        ],
    );
}

#[test]
fn lab_08_broken_on_purpose() {
    smoke(
        "08-broken-on-purpose.sh",
        false,
        false,
        &["CLOSE-WAIT", "NOT closing msock", "FIN-WAIT-2", "TIME-WAIT", "already in use"],
    );
}

#[test]
fn lab_09_pid1() {
    smoke(
        "09-pid1.sh",
        true,
        false,
        &[
            "[parent 1] listening on",
            "still alive?",
            "SIGKILL ended it",
            "<defunct>",
            "reaped child 3: killed by signal 15",
        ],
    );
}

/// Starts `script`, waits for `marker` in its output, interrupts it as
/// Ctrl-C does and checks that it cleaned up.
///
/// Ctrl-C sends SIGINT to the whole foreground process group, so the script
/// runs in a group of its own and the signal goes to that group. Sent to
/// the shell alone, it can be lost: bash (5.2) drops a SIGINT that arrives
/// while it waits for a command substitution such as `$(grep ...)` whose
/// process ends normally; the whole group's SIGINT kills that process too.
fn interrupt(script: &str, marker: &str) -> (PathBuf, u32) {
    let out = out_dir(&format!("int-{script}"));
    let mut child = KillOnDrop(
        command(script, &out)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let marker = marker.to_string();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(&marker) {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(TIMEOUT).expect("the script got to the marker");
    signal(-(child.0.id() as i32), libc::SIGINT);
    let status = wait_until("the script to exit", || child.0.try_wait().unwrap());
    assert_eq!(status.code(), Some(130), "a script interrupted by Ctrl-C exits 130");
    (out, child.0.id())
}

#[test]
fn an_interrupted_lab_stops_what_it_started() {
    let (out, _) = interrupt("07-shutdown.sh", "two idle clients");
    // The script sent SIGKILL to what it started: those go at once, though
    // not at the very instant the script exits.
    wait_until("servers and clients to stop", || holders_of(&out).is_empty().then_some(()));
    let _ = fs::remove_dir_all(&out);
}

#[test]
fn an_interrupted_namespace_lab_removes_its_namespaces() {
    if !is_root() || !have("ip") {
        eprintln!("skipped: needs root and ip");
        return;
    }
    let (out, pid) = interrupt("02-namespaces.sh", "listening on port");
    let namespaces =
        String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    let ours: Vec<&str> = namespaces.lines().filter(|l| l.contains(&format!("-{pid}"))).collect();
    wait_until("the server to stop", || holders_of(&out).is_empty().then_some(()));
    assert!(ours.is_empty(), "namespaces removed: {ours:?}");
    let _ = fs::remove_dir_all(&out);
}
