//! A smoke run of every lab script in labs/: each must run unattended, show
//! what its exercise is about, and leave nothing behind, also when it is
//! interrupted. Scripts that need root or tcpdump may skip (exit 77) where
//! those are missing, never where they are present; under CI, which has
//! them, a skip fails the test. (How the core's scripts run as an ordinary
//! user: tests/labs_rooms.rs.)

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use testbed::*;

/// Exit status of a script that skipped.
const SKIPPED: i32 = 77;

fn lab(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("labs").join(script)
}

/// A fresh output folder for one run, removed when dropped: also when
/// the test fails, or returns early.
struct OutDir(PathBuf);

impl std::ops::Deref for OutDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for OutDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for OutDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn out_dir(script: &str) -> OutDir {
    let dir = std::env::temp_dir().join(format!("tcpechod-lab-{}-{script}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    OutDir(dir)
}

fn command(script: &str, out: &Path) -> Command {
    let mut command = Command::new("bash");
    command.arg(lab(script)).env("TCPECHOD", SERVER).env("TCPECHO", CLIENT).env("LAB_OUT", out);
    // English unless asked otherwise (smoke_in), whatever this machine's locale.
    command.env("LANG", "C").env_remove("LC_ALL").env_remove("LC_MESSAGES");
    command
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
    let (status, text) = Run::start(script, command).finish();
    let can_run = (!needs_root || is_root()) && (!needs_tcpdump || have("tcpdump"));
    if status == Some(SKIPPED) {
        assert!(!can_run, "{script} skipped although it could run here:\n{text}");
        let _ = fs::remove_dir_all(&out);
        return cannot_run_here(script, text.lines().find(|l| l.contains("SKIPPED")).unwrap_or("skipped"));
    }
    assert_eq!(status, Some(0), "{script} failed:\n{text}");
    check_output(lang, script, &text, expected);
    assert!(run_folder(&text).starts_with(&out), "{script} names the folder of its run:\n{text}");
    // What the script killed at its end goes at once, though not at the
    // very instant the script exits; what it left running would stay.
    wait_until(&format!("{script}'s processes to stop"), || holders_of(&out).is_empty().then_some(()));
    let _ = fs::remove_dir_all(&out);
}

/// What every run's output must show: what to look at, in one language,
/// with its plurals right, and `expected`.
fn check_output(lang: &str, script: &str, text: &str, expected: &[&str]) {
    let (marker, other) =
        if lang.starts_with("es") { (">> FÍJATE:", ">> LOOK:") } else { (">> LOOK:", ">> FÍJATE:") };
    assert!(text.contains(marker), "{script} says what to look at, with {marker:?}:\n{text}");
    assert!(!text.contains(other), "{script} speaks one language only:\n{text}");
    for wrong in ["got back 1 lines", "1 children", "1 líneas", "1 hijos"] {
        assert!(!text.contains(wrong), "{script} gets its plurals right ({wrong:?}):\n{text}");
    }
    // An explanation wrapped at 88 columns, back into one line.
    let flat = text.replace("\n   ", " ");
    for phrase in expected {
        assert!(flat.contains(phrase), "{script} should show {phrase:?}:\n{text}");
    }
}

/// The folder a run says it left its logs in (its last line, in English
/// or in Spanish).
fn run_folder(text: &str) -> PathBuf {
    let line = text
        .lines()
        .rev()
        .find(|l| l.starts_with("Logs of this run: ") || l.starts_with("Registros de esta ejecución: "));
    let folder = PathBuf::from(line.and_then(|l| l.split(": ").nth(1)).unwrap_or_default());
    assert!(folder.is_dir(), "the run's folder {folder:?} exists:\n{text}");
    folder
}

/// A script running, its stdout and stderr collected.
struct Run {
    script: String,
    pid: i32,
    output: mpsc::Receiver<std::io::Result<std::process::Output>>,
}

impl Run {
    fn start(script: &str, mut command: Command) -> Run {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("run bash");
        let pid = child.id() as i32;
        let (tx, output) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        Run { script: script.to_string(), pid, output }
    }

    /// Waits for the end (at most 120 s: then it is interrupted as by
    /// Ctrl-C, and the test fails); its exit status and its output, stdout
    /// then stderr.
    fn finish(self) -> (Option<i32>, String) {
        let output = match self.output.recv_timeout(Duration::from_secs(120)) {
            Ok(output) => output.expect("wait for the script"),
            Err(_) => {
                signal(-self.pid, libc::SIGINT);
                panic!("{} did not finish in time", self.script);
            }
        };
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code(), text)
    }
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

/// Root or not: as an ordinary user it captures in a private network (or
/// shows the recording where the kernel refuses that).
#[test]
fn lab_02_tcpdump() {
    smoke("02-tcpdump.sh", false, true, &["Flags [S.]", "Flags [F.]", "Flags [R]", "02-tcpdump.txt"]);
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
        &[
            "LISTEN",
            "ESTAB",
            "TIME-WAIT",
            "timer:(timewait,",
            "ip_local_port_range",
            "--mode iterative",
            "a line",
        ],
    );
}

#[test]
fn lab_04_misbehaving_clients() {
    let mut expected = vec![
        "is anybody there?",
        "exited with status 4: connection reset",
        "exit status 124",
        "WCHAN",
        "it waits to read.",
        "it waits to write.",
    ];
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
            "sigpipe=1 cut=0 killed=0",
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
            "cut after the grace period",
            "cut=1 killed=0",
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
fn interrupt(script: &str, marker: &str) -> (OutDir, u32) {
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
    // Ctrl-C, and again if bash dropped it (as above: it can, when the
    // signal comes as a command substitution's process ends normally), as a
    // student would press it again. Whenever it is taken, the script must
    // stop there, with 130.
    let status = wait_until("the script to exit", || {
        signal(-(child.0.id() as i32), libc::SIGINT);
        poll_until(Duration::from_secs(1), || child.0.try_wait().unwrap())
    });
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
    let test = "an_interrupted_namespace_lab_removes_its_namespaces";
    if !needs_root(test, "to make network namespaces") {
        return;
    }
    if !have("ip") {
        return cannot_run_here(test, "ip (iproute2) is not installed");
    }
    let (out, pid) = interrupt("02-namespaces.sh", "listening on port");
    let namespaces =
        String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    let ours: Vec<&str> = namespaces.lines().filter(|l| l.contains(&format!("-{pid}"))).collect();
    wait_until("the server to stop", || holders_of(&out).is_empty().then_some(()));
    assert!(ours.is_empty(), "namespaces removed: {ours:?}");
    let _ = fs::remove_dir_all(&out);
}

/// Every script a student runs can be run as `labs/NN-name.sh`: it is
/// executable in git's index (which is what a clone gets) and here, and
/// starts with its interpreter. lib.sh is not run but sourced by them all,
/// so it is not executable (run alone, it would do nothing useful).
#[test]
fn lab_scripts_are_executable_and_their_library_is_not() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut scripts: Vec<String> = fs::read_dir(root.join("labs"))
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".sh"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 10, "the lab's scripts: {scripts:?}");
    let index = Command::new("git").args(["ls-files", "--stage", "--", "labs"]).current_dir(root).output();
    // "100755 HASH 0\tlabs/NAME" for each file git knows.
    let modes: Vec<(String, String)> = match index {
        Ok(index) if index.status.success() => String::from_utf8_lossy(&index.stdout)
            .lines()
            .filter_map(|line| {
                let (info, path) = line.split_once('\t')?;
                Some((path.to_string(), info.split(' ').next()?.to_string()))
            })
            .collect(),
        _ => {
            eprintln!("not a git checkout: only the files' modes here are checked");
            Vec::new()
        }
    };
    for script in &scripts {
        let run = script != "lib.sh";
        let path = root.join("labs").join(script);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text.starts_with("#!/usr/bin/env bash\n"),
            run,
            "{script}: a shebang line only if it is run"
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111 != 0, run, "{script}: mode {mode:o} here");
        if !modes.is_empty() {
            let path = format!("labs/{script}");
            let mode = modes.iter().find(|(p, _)| *p == path).map(|(_, mode)| mode.as_str());
            let expected = if run { "100755" } else { "100644" };
            assert_eq!(mode, Some(expected), "{script}: its mode in git's index (git update-index --chmod)");
        }
    }
}

/// What a run's output says about servers: the PIDs and ports of its own
/// ("server PID listening on port PORT"), and every PID and port that it
/// shows as a server's or a server child's: in the logs ([parent PID],
/// [child PID]), in ps (PID and PPID of its rows), as the port a server
/// listens on or a client connects to.
struct Shown {
    own_pids: HashSet<u32>,
    own_ports: HashSet<u32>,
    pids: HashSet<u32>,
    ports: HashSet<u32>,
}

fn shown(text: &str) -> Shown {
    let (mut own_pids, mut own_ports) = (HashSet::new(), HashSet::new());
    for line in text.lines() {
        if let ["server", pid, "listening", "on", "port", port] =
            line.split_whitespace().collect::<Vec<_>>()[..]
        {
            own_pids.extend(pid.parse::<u32>());
            own_ports.extend(port.parse::<u32>());
        }
    }
    let mut pids = numbers_after(text, "[parent ");
    pids.extend(numbers_after(text, "[child "));
    // ps rows: PID first, then PPID (ps x -o pid,ppid,...) or the terminal
    // (ps x).
    for line in text.lines().filter(|l| l.contains("TCPechod") && !l.starts_with('$')) {
        let mut columns = line.split_whitespace().take(2).map(|c| c.parse::<u32>());
        if let Some(Ok(pid)) = columns.next() {
            pids.insert(pid);
            pids.extend(columns.next().and_then(Result::ok));
        }
    }
    let mut ports = numbers_after(text, "listening on port ");
    ports.extend(numbers_after(text, "listening on 127.0.0.1:"));
    ports.extend(numbers_after(text, " 127.0.0.1 "));
    Shown { own_pids, own_ports, pids, ports }
}

/// Two students on one machine, or one with two terminals: the same script
/// twice (once on a port of its own, LAB_PORT, once on any free port) and
/// another one, all at once, with one folder for their logs. Each run
/// succeeds, keeps its logs in a folder of its own, and shows only its own
/// servers, their PIDs and ports.
#[test]
fn lab_runs_at_once_keep_apart() {
    let out = out_dir("at-once");
    let port = free_port().to_string();
    let scripts = [("05-zombies.sh", Some(port.as_str())), ("05-zombies.sh", None), ("06-sigpipe.sh", None)];
    let runs: Vec<Run> = scripts
        .iter()
        .map(|(script, port)| {
            let mut command = command(script, &out);
            if let Some(port) = port {
                command.env("LAB_PORT", port);
            }
            Run::start(script, command)
        })
        .collect();
    let texts: Vec<(&str, String)> = scripts
        .iter()
        .zip(runs)
        .map(|((script, _), run)| {
            let (status, text) = run.finish();
            assert_eq!(status, Some(0), "{script} failed, run beside others:\n{text}");
            (*script, text)
        })
        .collect();
    check_output(
        "C",
        "05-zombies.sh",
        &texts[0].1,
        &["listening on port", &format!("TCPecho 127.0.0.1 {port}")],
    );
    check_output("C", "05-zombies.sh", &texts[1].1, &["<defunct>", "zombies=3"]);
    check_output("C", "06-sigpipe.sh", &texts[2].1, &["killed by signal 13 (SIGPIPE)"]);
    let folders: HashSet<PathBuf> = texts.iter().map(|(_, text)| run_folder(text)).collect();
    assert_eq!(folders.len(), 3, "a folder for each run: {folders:?}");
    for (script, text) in &texts {
        let folder = run_folder(text);
        let name = script.trim_end_matches(".sh");
        assert_eq!(
            folder.parent(),
            Some(out.join(name).as_path()),
            "{script}'s runs go in one folder of its own"
        );
        let log = if *script == "06-sigpipe.sh" { "06-count.log" } else { "05-without.log" };
        let log = fs::read_to_string(folder.join(log)).unwrap();
        assert!(log.contains("shutdown: accepted="), "{script}'s log, whole:\n{log}");
    }
    let shown: Vec<Shown> = texts.iter().map(|(_, text)| shown(text)).collect();
    for (i, (script, text)) in texts.iter().enumerate() {
        assert!(!shown[i].own_pids.is_empty() && !shown[i].own_ports.is_empty(), "{script}:\n{text}");
        for (j, other) in shown.iter().enumerate().filter(|(j, _)| *j != i) {
            let pids: Vec<_> = other.own_pids.intersection(&shown[i].pids).collect();
            let ports: Vec<_> = other.own_ports.intersection(&shown[i].ports).collect();
            assert!(pids.is_empty(), "{script} shows servers {pids:?} of run {j} ({}):\n{text}", texts[j].0);
            assert!(ports.is_empty(), "{script} shows ports {ports:?} of run {j} ({}):\n{text}", texts[j].0);
        }
    }
    wait_until("the runs' processes to stop", || holders_of(&out).is_empty().then_some(()));
    let _ = fs::remove_dir_all(&out);
}

/// LAB_PORT already taken: the server dies at once, and the script stops at
/// once too, with the server's own error and what to do about it (it used
/// to wait its 10 s for a "listening on" line that could not come).
#[test]
fn a_lab_whose_port_is_taken_says_so_and_stops() {
    let out = out_dir("port-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut command = command("05-zombies.sh", &out);
    command.env("LAB_PORT", &port);
    let (status, text) = Run::start("05-zombies.sh", command).finish();
    assert_eq!(status, Some(1), "{text}");
    for phrase in
        ["the server did not start; its log", "already in use", &format!("LAB_PORT={port} is taken")]
    {
        assert!(text.contains(phrase), "{phrase:?}:\n{text}");
    }
    assert!(!text.contains("timed out"), "it does not wait for what cannot come:\n{text}");
    run_folder(&text);
    wait_until("the script's processes to stop", || holders_of(&out).is_empty().then_some(()));
    let _ = fs::remove_dir_all(&out);
}
