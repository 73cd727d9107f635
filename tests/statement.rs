//! Every command that the statement's core quotes (README.md and
//! README_EN.md, up to section 5) runs as written, so that a change of
//! wording that breaks a command fails here.
//!
//! The commands are read from the statement itself: every line of its `sh`
//! blocks, and every inline command (a quoted line that starts the way a
//! command does: `./TCPecho ...`, `ss -tanp`, `labs/03-netstat.sh`...). Both
//! languages must quote the same ones, in the same order. They run in that
//! order on a desk of their own (a folder with `./TCPechod`, `./TCPecho`,
//! `labs/` and a copy of the student's crate), as a student runs them: the
//! port `8xxx` is a free port, `PID` the process the text names (the server,
//! or one of its children), and what a command should show is checked
//! (the server's PID in `ps`, the port in `ss`, a SYN in tcpdump, the echo
//! in TCPecho...). The lab scripts the text names run as well, in a test of
//! their own.
//!
//! Three commands are left to CI, which runs them on a fresh machine
//! (.ci/run): `make`, `make run` and `make test` at the top of the
//! repository. `make` here would rebuild the very binaries that the other
//! tests are running.

use std::collections::HashSet;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::Duration;

use testbed::*;

/// Commands run by CI (.ci/run), not here: see the module's comment.
const RUN_BY_CI: [&str; 3] = ["make run", "make test", "make"];

/// Quoted forms that are not commands to run as they stand: the text
/// explains `kill` with a placeholder signal, and names `kill -TERM`
/// before saying which PID it goes to.
const TEMPLATES: [&str; 3] = ["kill -SEÑAL PID", "kill -SIGNAL PID", "kill -TERM"];

/// How long a build (the student's crate, the warm-up programs) may take.
const BUILD_TIME: Duration = Duration::from_secs(900);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The core of a statement: everything before its section 5 (sections 1
/// to 3, the exercises, and 4, what to hand in).
fn core(file: &str) -> String {
    let text = fs::read_to_string(repo().join(file)).unwrap_or_else(|err| panic!("{file}: {err}"));
    let end = text.find("\n## 5.").unwrap_or_else(|| panic!("{file} has a section 5"));
    text[..end].to_string()
}

/// Whether an inline quote is a command line (and not a name, a path or
/// an option).
fn is_command(quote: &str) -> bool {
    let script = quote.split(' ').any(|word| word.starts_with("labs/") && word.ends_with(".sh"));
    let starts = ["./", "../", "ps ", "ss ", "netstat ", "cat /", "kill ", "make ", "tcpdump ", "head "];
    script || (quote.contains(' ') && starts.iter().any(|start| quote.starts_with(start)))
}

/// The commands a statement quotes, in order: the lines of its `sh` blocks
/// (without their comments) and its inline commands. A paragraph is read
/// as one line, so that a quote that runs over a line end is whole.
fn statement_commands(file: &str) -> Vec<String> {
    let mut commands = Vec::new();
    // Inside a fenced block, and whether it is an `sh` one.
    let (mut in_block, mut in_sh) = (false, false);
    let mut paragraph = String::new();
    let end_of_paragraph = |paragraph: &mut String, commands: &mut Vec<String>| {
        commands.extend(inline_quotes(paragraph).into_iter().filter(|q| is_command(q)));
        paragraph.clear();
    };
    for line in core(file).lines() {
        if line.starts_with("```") {
            end_of_paragraph(&mut paragraph, &mut commands);
            in_block = !in_block;
            in_sh = in_block && line.trim() == "```sh";
            continue;
        }
        if in_sh {
            let command = line.split("  #").next().unwrap_or("").trim();
            if !command.is_empty() {
                commands.push(command.to_string());
            }
        } else if in_block {
            continue;
        } else if line.trim().is_empty() {
            end_of_paragraph(&mut paragraph, &mut commands);
        } else {
            paragraph.push_str(line.trim());
            paragraph.push(' ');
        }
    }
    end_of_paragraph(&mut paragraph, &mut commands);
    commands
}

/// The `quoted` parts of a text, with their spaces made single.
fn inline_quotes(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(|quote| quote.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn both_statements_quote_the_same_commands() {
    let es = statement_commands("README.md");
    let en = statement_commands("README_EN.md");
    let es: Vec<&String> = es.iter().filter(|c| !TEMPLATES.contains(&c.as_str())).collect();
    let en: Vec<&String> = en.iter().filter(|c| !TEMPLATES.contains(&c.as_str())).collect();
    assert_eq!(es, en, "README.md and README_EN.md quote the same commands, in the same order");
    assert!(es.len() >= 20, "the core quotes its commands: {es:?}");
}

/// A process a command left running, with what it has printed so far;
/// killed with its whole process group when dropped.
struct Background {
    child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    seen: Vec<String>,
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl Background {
    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits until stdout or stderr has a line with `text`; fails at once
    /// if the process ends first.
    fn wait_for(&mut self, text: &str) {
        wait_until(&format!("a line with {text:?}"), || {
            while let Ok(line) = self.stdout.try_recv().or_else(|_| self.stderr.try_recv()) {
                self.seen.push(line);
            }
            if self.seen.iter().any(|l| l.contains(text)) {
                return Some(());
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ended ({status}) before a line with {text:?}:\n{}", self.seen.join("\n"));
            }
            None
        });
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        signal(-self.pid(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Where the commands run, and what they left running.
struct Desk {
    dir: PathBuf,
    cwd: PathBuf,
    /// The `8xxx` of the text.
    port: u16,
    /// The server the last `./TCPechod 8xxx` started.
    server: Option<Background>,
    /// Clients left running (`--hold`, `--no-read`).
    clients: Vec<Background>,
}

/// The ESTABLISHED connections to `port` (client ends) on 127.0.0.1.
fn connections_to(port: u16) -> usize {
    tcp_table().iter().filter(|e| e.remote_port == port && e.state == TCP_ESTABLISHED).count()
}

impl Desk {
    fn new(tag: &str) -> Desk {
        let dir = std::env::temp_dir().join(format!("tcpechod-desk-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("labs")).unwrap();
        symlink(SERVER, dir.join("TCPechod")).unwrap();
        symlink(CLIENT, dir.join("TCPecho")).unwrap();
        for program in ["processes", "threads"] {
            symlink(repo().join(program), dir.join(program)).unwrap();
        }
        for entry in fs::read_dir(repo().join("labs")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "sh") {
                symlink(&path, dir.join("labs").join(path.file_name().unwrap())).unwrap();
            }
        }
        copy_student_crate(&dir.join("labs/student"));
        for sheet in ["RESPUESTAS.md", "ANSWER_SHEET.md"] {
            symlink(repo().join(sheet), dir.join(sheet)).unwrap();
        }
        Desk { cwd: dir.clone(), dir, port: free_port(), server: None, clients: Vec::new() }
    }

    /// `command` as the shell of the desk runs it: in the current folder,
    /// in English, with the lab scripts using the binaries under test.
    fn shell(&self, command: &str) -> Command {
        let mut shell = Command::new("bash");
        shell
            .args(["-c", command])
            .current_dir(&self.cwd)
            .env("LANG", "C")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env("TCPECHOD", SERVER)
            .env("TCPECHO", CLIENT)
            .env("LAB_OUT", self.dir.join("out"))
            .env("TARGET", student_target());
        shell.process_group(0);
        shell
    }

    /// Runs `command` to its end, with `input`, within `limit`.
    fn run(&self, command: &str, input: &[u8], limit: Duration) -> Output {
        let mut child = self
            .shell(command)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash");
        let pid = child.id() as i32;
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(limit) {
            Ok(output) => output.unwrap(),
            Err(_) => {
                signal(-pid, libc::SIGKILL);
                panic!("{command:?} did not finish within {limit:?}");
            }
        }
    }

    /// Starts `command` and leaves it running.
    fn start(&self, command: &str) -> Background {
        let mut child = self
            .shell(command)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("bash");
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Background { child, stdout, stderr, seen: Vec::new() }
    }

    fn server_pid(&self) -> Option<i32> {
        self.server.as_ref().map(Background::pid)
    }

    /// A child of the server that is serving a client, started for the
    /// purpose if there is none ("a child that serves a client").
    fn live_child(&mut self) -> i32 {
        let server = self.server_pid().expect("a server is running");
        let live = |pid| children_of(pid).into_iter().find(|c| !c.is_zombie()).map(|c| c.pid);
        if let Some(pid) = live(server) {
            return pid;
        }
        let client = self.start(&format!("exec {CLIENT} --hold 60 127.0.0.1 {} < /dev/null", self.port));
        self.clients.push(client);
        wait_until("a child serving a client", || live(server))
    }

    /// Stops the clients left running, then the server.
    fn stop_server(&mut self) {
        self.clients.clear();
        if let Some(mut server) = self.server.take() {
            signal(server.pid(), libc::SIGTERM);
            wait_until("the server to exit", || server.child.try_wait().unwrap());
        }
    }

    /// Runs one command of the statement and checks what it shows.
    fn follow(&mut self, command: &str) {
        let port = self.port.to_string();
        let text = command.replace("8xxx", &port);
        let ok = |output: &Output| {
            assert!(
                output.status.success(),
                "{command:?} failed ({}):\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        };
        let in_student = self.cwd.ends_with("labs/student");
        match text.as_str() {
            _ if text.starts_with("cd ") => {
                let to = self.cwd.join(&text[3..]);
                assert!(to.is_dir(), "{command:?}: no such folder");
                self.cwd = to;
            }
            "make" if in_student => {
                ok(&self.run("make", b"", BUILD_TIME));
                for binary in ["TCPechod", "TCPechod-noreaper", "check"] {
                    assert!(self.cwd.join(binary).exists(), "make built ./{binary}");
                }
            }
            _ if text.starts_with("make check") => {
                // Whatever the student has written so far (the skeleton,
                // or exercises 5 to 7 done): the checker runs, passes the
                // part that is given (exercises 1 to 4) and ends with the
                // score; it exits 0 only when every check passed.
                let output = self.run(&text, b"", BUILD_TIME);
                let report = String::from_utf8_lossy(&output.stdout).into_owned();
                assert!(
                    matches!(output.status.code(), Some(0 | 2)),
                    "{command:?}: {}\n{report}",
                    output.status
                );
                let exercise = text.trim_start_matches("make check");
                if exercise.is_empty() {
                    let given =
                        report.split("\n\n").find(|part| part.contains("Exercises 1 to 4")).unwrap_or("");
                    assert_eq!(given.matches("  [OK]").count(), 4, "exercises 1 to 4 pass:\n{report}");
                    assert!(!given.contains("[FAIL]"), "exercises 1 to 4 pass:\n{report}");
                } else {
                    assert!(report.contains(&format!("Exercise {exercise}:")), "{command:?}:\n{report}");
                }
                // (The last line of the checker's: make may add its own
                // "Leaving directory" after it, when it runs under make.)
                let score = report.lines().rev().find(|l| !l.starts_with("make")).unwrap_or("");
                assert!(score.starts_with("SCORE "), "{command:?} ends with the score:\n{report}");
                let passed = !report.contains("[FAIL]");
                assert_eq!(
                    output.status.success(),
                    passed,
                    "{command:?}: its status says whether all passed"
                );
            }
            _ if text.starts_with("./TCPechod") && text.contains("--mode") => {
                // Named in passing (exercise 3): it starts and stops, on a
                // port of its own.
                let other = text.replace(&port, &free_port().to_string());
                let mut server = self.start(&format!("exec {other}"));
                server.wait_for("listening on");
                signal(server.pid(), libc::SIGTERM);
                let status = wait_until("the server to exit", || server.child.try_wait().unwrap());
                assert!(status.success(), "{command:?} ends with 0 on SIGTERM: {status}");
            }
            _ if text.starts_with("./TCPechod") => {
                self.stop_server();
                let mut server = self.start(&format!("exec {text}"));
                server.wait_for("listening on");
                self.server = Some(server);
            }
            _ if text.starts_with("printf ") && text.contains("TCPecho --no-read") => {
                // Two lines sent, and the client closes without reading:
                // the server echoes both (its --delay) to a closed socket.
                ok(&self.run(&text, b"", TIMEOUT));
                let server = self.server.as_mut().expect("a server runs");
                server.wait_for("finished: 8 bytes echoed");
            }
            _ if text.contains("TCPecho ") && (text.contains("--hold") || text.contains("--no-read")) => {
                let before = connections_to(self.port);
                let client = self.start(&text);
                wait_until("the client's connection", || (connections_to(self.port) > before).then_some(()));
                self.clients.push(client);
            }
            _ if text.contains("TCPecho ") && text.contains('<') => {
                ok(&self.run(&text, b"", TIMEOUT));
            }
            _ if text.contains("TCPecho ") => {
                let echo = ok(&self.run(&text, b"hello, server\n", TIMEOUT));
                assert_eq!(echo, "hello, server\n", "{command:?} echoes what is typed");
            }
            _ if text.starts_with("tcpdump ") => {
                if !is_root() || !have("tcpdump") {
                    return cannot_run_here(command, "needs root and tcpdump");
                }
                let mut capture = self.start(&format!("exec {text}"));
                capture.wait_for("listening on");
                ok(&self.run(&format!("./TCPecho 127.0.0.1 {port}"), b"seen by tcpdump\n", TIMEOUT));
                capture.wait_for(&format!(".{port}: Flags [S]"));
                capture.wait_for("Flags [F.]");
            }
            _ if text.starts_with("ps ") => {
                let shown = ok(&self.run(&text, b"", TIMEOUT));
                if let Some(pid) = self.server_pid() {
                    assert!(
                        shown.lines().any(|l| l.split_whitespace().next() == Some(&pid.to_string())),
                        "{command:?} shows the server {pid}:\n{shown}"
                    );
                }
            }
            _ if text.starts_with("ss ") || text.starts_with("netstat ") => {
                if !have(text.split(' ').next().unwrap()) {
                    return cannot_run_here(command, "netstat is not installed");
                }
                let shown = ok(&self.run(&text, b"", TIMEOUT));
                if command.contains("8xxx") {
                    assert!(shown.contains(&format!(":{port}")), "{command:?} shows the port:\n{shown}");
                }
                assert!(shown.lines().count() > 1, "{command:?} lists sockets:\n{shown}");
            }
            "labs/private-net.sh" => {
                // Interactive as quoted: here, a command in a network of
                // its own, where the kernel lets users open one.
                if !self.run("labs/private-net.sh --check", b"", TIMEOUT).status.success() {
                    return cannot_run_here(command, "this kernel refuses user namespaces");
                }
                let shown = ok(&self.run("labs/private-net.sh --new ip -o addr show lo", b"", TIMEOUT));
                assert!(shown.contains("127.0.0.1"), "{command:?}: a loopback of its own:\n{shown}");
            }
            "cat /proc/PID/stack" => {
                if !is_root() {
                    return cannot_run_here(command, "/proc/PID/stack is for root");
                }
                let child = self.live_child();
                let stack = ok(&self.run(&format!("cat /proc/{child}/stack"), b"", TIMEOUT));
                assert!(
                    stack.contains("sk_wait_data") || stack.contains("sk_stream_wait_memory"),
                    "the child {child} sleeps in a socket:\n{stack}"
                );
            }
            _ if text.starts_with("kill -") && text.ends_with(" PID") => {
                let signal_name = text["kill -".len()..text.len() - " PID".len()].to_string();
                let target = if signal_name == "TERM" {
                    self.server_pid().expect("a server")
                } else {
                    self.live_child()
                };
                ok(&self.run(&format!("kill -{signal_name} {target}"), b"", TIMEOUT));
                // Without a handler (the untouched skeleton) the signal's
                // default action ends the process. With the student's
                // (exercises 6 and 7 done), SIGTERM still ends the server,
                // from its loop, and a child that caught SIGPIPE lives on.
                wait_until(&format!("{target} to end after SIG{signal_name}, or to catch it"), || {
                    let ended = Proc::read(target).is_none_or(|p| p.is_zombie());
                    let caught = signal_name == "PIPE" && catches(target, libc::SIGPIPE);
                    (ended || caught).then_some(())
                });
                if signal_name == "TERM" {
                    self.stop_server();
                }
            }
            "make entrega" => {
                // Made at the top of the repository (here, the desk), named
                // after the user, whatever the checker thinks of the server.
                ok(&self.run("make entrega", b"", BUILD_TIME));
                let user = ok(&self.run("id -un", b"", TIMEOUT)).trim().to_string();
                let tarball = self.dir.join(format!("entrega-{user}.tar.gz"));
                let listing = ok(&self.run(&format!("tar -tzf {}", tarball.display()), b"", TIMEOUT));
                let holds = |file: &str| listing.contains(&format!("entrega-{user}/{file}"));
                for file in ["main.rs", "check.txt", "INFO"] {
                    assert!(holds(file), "{file} in:\n{listing}");
                }
                // The sheets the student filled in (both while neither is:
                // the untouched copy; one once the student answered in it).
                assert!(holds("RESPUESTAS.md") || holds("ANSWER_SHEET.md"), "an answer sheet in:\n{listing}");
            }
            "labs/port.sh" => {
                let port: u16 = ok(&self.run(&text, b"", TIMEOUT)).trim().parse().expect("a port number");
                assert!((8000..32768).contains(&port), "8000 + LAST + 256 * SLOT, below 32768: {port}");
            }
            _ if text.starts_with('(') => {
                let shown = ok(&self.run(&text, b"", BUILD_TIME));
                assert!(!shown.is_empty(), "{command:?} prints what it shows");
            }
            _ if text.starts_with("cat ") || text.starts_with("kill -l") => {
                assert!(!ok(&self.run(&text, b"", TIMEOUT)).is_empty(), "{command:?} shows something");
            }
            _ => panic!(
                "the statement quotes {command:?}, and this test does not know how to run it: teach it"
            ),
        }
    }
}

impl Drop for Desk {
    fn drop(&mut self) {
        self.stop_server();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Where the student's crate builds, shared with tests/student.rs.
fn student_target() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("student")
}

fn is_script(command: &str) -> bool {
    command.split(' ').any(|word| {
        word.starts_with("labs/")
            && word.ends_with(".sh")
            && word != "labs/port.sh"
            && word != "labs/private-net.sh"
    })
}

#[test]
fn every_command_of_the_statement_runs_as_written() {
    let mut desk = Desk::new("commands");
    let mut top_level = true;
    for command in statement_commands("README.md") {
        if TEMPLATES.contains(&command.as_str()) || is_script(&command) {
            continue;
        }
        if command.starts_with("cd ") {
            top_level = false;
        }
        if top_level && RUN_BY_CI.contains(&command.as_str()) {
            // The repository's CI runs them; the students' copy (the
            // handout) has no CI of its own, and nothing to check here.
            if let Ok(ci) = fs::read_to_string(repo().join(".ci/run")) {
                assert!(ci.contains(&command), ".ci/run runs {command:?}");
            }
            continue;
        }
        desk.follow(&command);
        eprintln!("ran as written: {command}");
    }
}

#[test]
fn every_lab_script_of_the_statement_runs() {
    let desk = Desk::new("scripts");
    let scripts: Vec<String> = statement_commands("README.md").into_iter().filter(|c| is_script(c)).collect();
    let unique: HashSet<&String> = scripts.iter().collect();
    assert!(unique.len() >= 7, "the core names the scripts of exercises 1 to 7: {scripts:?}");
    // Each in a thread of its own: they use ports of their own.
    let runs: Vec<_> = unique
        .into_iter()
        .enumerate()
        .map(|(n, script)| {
            let mut command = desk.shell(script);
            // Logs of their own: a script may be named twice (in two languages).
            command.env("LAB_OUT", desk.dir.join(format!("out-{n}")));
            command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
            let script = script.clone();
            thread::spawn(move || {
                let child = command.spawn().expect("bash");
                let pid = child.id() as i32;
                let (tx, rx) = mpsc::channel();
                thread::spawn(move || {
                    let _ = tx.send(child.wait_with_output());
                });
                let output = rx.recv_timeout(Duration::from_secs(180)).unwrap_or_else(|_| {
                    signal(-pid, libc::SIGKILL);
                    panic!("{script} did not finish in time");
                });
                (script, output.unwrap())
            })
        })
        .collect();
    for run in runs {
        let (script, output) = run.join().expect("the script's thread");
        let text =
            format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        match output.status.code() {
            Some(0) => assert!(text.contains(">> "), "{script} says what to look at:\n{text}"),
            Some(77) => cannot_run_here(&script, text.lines().last().unwrap_or("skipped")),
            _ => panic!("{script} failed ({}):\n{text}", output.status),
        }
        if script.starts_with("LANG=es") {
            assert!(text.contains(">> FÍJATE:"), "{script} speaks Spanish:\n{text}");
        }
    }
}

/// Minutes in a heading's title, `(15 min)` or `(2 h)`.
fn minutes_of(heading: &str) -> Option<u32> {
    let inside = heading.trim_end().strip_suffix(')')?.rsplit_once('(')?.1;
    let (number, unit) = inside.split_once(' ')?;
    let number: u32 = number.parse().ok()?;
    match unit {
        "min" => Some(number),
        "h" => Some(number * 60),
        _ => None,
    }
}

/// The timed headings of a statement, in order: (level, title, minutes).
fn timed_headings(file: &str) -> Vec<(usize, String, u32)> {
    let text = fs::read_to_string(repo().join(file)).unwrap();
    text.lines()
        .filter_map(|line| {
            let level = line.chars().take_while(|&c| c == '#').count();
            let minutes = minutes_of(line)?;
            (level == 2 || level == 3).then(|| (level, line.to_string(), minutes))
        })
        .collect()
}

#[test]
fn the_core_fits_one_session_by_its_timed_headings() {
    // A session is 2 h 45; the core must leave a margin of at least 15 min
    // (handing in, and the delays of a lab room).
    const SESSION: u32 = 165;
    const MARGIN: u32 = 15;
    let es = timed_headings("README.md");
    let en = timed_headings("README_EN.md");
    let times = |headings: &[(usize, String, u32)]| -> Vec<u32> { headings.iter().map(|h| h.2).collect() };
    assert_eq!(times(&es), times(&en), "both languages give each part the same time");
    // Each timed section (##) is the sum of its timed parts (###), if it has any.
    let mut total = 0;
    for (i, (level, title, minutes)) in es.iter().enumerate() {
        if *level != 2 {
            continue;
        }
        total += minutes;
        let parts: u32 = es[i + 1..].iter().take_while(|h| h.0 == 3).map(|h| h.2).sum();
        assert!(parts == 0 || parts == *minutes, "{title}: its parts add up to {parts} min");
    }
    let sections = es.iter().filter(|h| h.0 == 2).count();
    assert_eq!(sections, 3, "sections 1 to 3 are timed: {es:?}");
    assert!(total + MARGIN <= SESSION, "the core takes {total} min: more than {} min", SESSION - MARGIN);
}

/// The numbered questions of a statement's core: (number, text).
fn numbered_questions(file: &str, label: char) -> Vec<(u32, String)> {
    let text = core(file);
    let mut questions: Vec<(u32, String)> = Vec::new();
    let mut in_question = false;
    for line in text.lines() {
        let start = format!("- **{label}");
        if let Some(rest) = line.strip_prefix(&start) {
            let (number, question) = rest.split_once(".** ").expect("- **P<n>.** text");
            questions.push((number.parse().expect("a number"), question.to_string()));
            in_question = true;
        } else if in_question && line.starts_with("  ") && !line.trim().is_empty() {
            let last = questions.last_mut().unwrap();
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            in_question = false;
        }
    }
    questions
}

#[test]
fn the_core_numbers_its_questions_and_asks_no_more_than_a_session_allows() {
    for (file, label) in [("README.md", 'P'), ("README_EN.md", 'Q')] {
        let questions = numbered_questions(file, label);
        let numbers: Vec<u32> = questions.iter().map(|q| q.0).collect();
        assert_eq!(numbers, (1..=questions.len() as u32).collect::<Vec<_>>(), "{file}: numbered in order");
        assert!((20..=25).contains(&questions.len()), "{file}: {} questions", questions.len());
        let asked = core(file).split("\n## 4.").next().unwrap().matches('?').count();
        assert!(asked <= 25, "{file}: {asked} question marks in the core");
    }
    assert_eq!(numbered_questions("README.md", 'P').len(), numbered_questions("README_EN.md", 'Q').len());
}

#[test]
fn the_answer_sheets_hold_every_question_of_the_statement() {
    for (statement, sheet, label) in
        [("README.md", "RESPUESTAS.md", 'P'), ("README_EN.md", "ANSWER_SHEET.md", 'Q')]
    {
        let text = fs::read_to_string(repo().join(sheet)).unwrap();
        let parts: Vec<&str> = text.split("\n## ").skip(1).collect();
        let questions = numbered_questions(statement, label);
        assert_eq!(parts.len(), questions.len(), "{sheet}: one part per question of {statement}");
        for (part, (number, question)) in parts.iter().zip(&questions) {
            let heading = part.lines().next().unwrap();
            assert_eq!(heading, format!("{label}{number}"), "{sheet}");
            assert!(part.contains(question.as_str()), "{sheet} {heading} quotes {question:?}");
        }
    }
}
