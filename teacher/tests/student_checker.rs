//! The checker of the student's server (labs/checker, built by
//! labs/student's make into ./check) cannot be fooled. Each cheat that once passed it is edited, by this
//! file, into a copy of the reference solution, and the checker fails it,
//! in English and in Spanish, saying what it saw, what it expected and
//! where to look. However the checker ends (its end, Ctrl-C, SIGTERM, a
//! fork bomb stopped), no process of the student's server is left. And
//! its score line, its JSON and its usage errors.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, SystemTime};

use teacher::json::Json;
use testbed::*;

/// The longest one run of the checker may take (its waits are 10 s each).
const CHECK_TIME: Duration = Duration::from_secs(180);

/// One build at a time: the copies share one target directory, and cargo
/// tells a copy's sources from the last one's only by their times.
static BUILD: Mutex<()> = Mutex::new(());

/// A copy of the student's crate, removed when dropped.
struct Crate {
    root: PathBuf,
    dir: PathBuf,
}

impl Drop for Crate {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A copy of labs/student with the reference solution applied, then each
/// `(old, new)` of `edits` (`old` must be there, once), built with make.
fn solution_with(name: &str, edits: &[(&str, &str)]) -> Crate {
    build_at(scratch_root(name), name, true, edits)
}

/// The same with the untouched skeleton (exercises 5 to 7 not done).
fn skeleton_with(name: &str, edits: &[(&str, &str)]) -> Crate {
    build_at(scratch_root(name), name, false, edits)
}

fn scratch_root(name: &str) -> PathBuf {
    let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos();
    std::env::temp_dir().join(format!("tcpechod-checker-{}-{name}-{stamp}", std::process::id()))
}

/// A copy of labs/student at `root` (replaced if it is there), `solved`
/// or not, with `edits`, built with make.
fn build_at(root: PathBuf, name: &str, solved: bool, edits: &[(&str, &str)]) -> Crate {
    let _one_build = BUILD.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = fs::remove_dir_all(&root);
    let dir = root.join("labs/student");
    copy_student_crate(&dir);
    if solved {
        apply_solution(&root);
    }
    let main = dir.join("src/main.rs");
    let mut source = fs::read_to_string(&main).unwrap();
    for (old, new) in edits {
        assert_eq!(source.matches(old).count(), 1, "{name}: the solution holds {old:?} once");
        source = source.replacen(old, new, 1);
    }
    fs::write(&main, source).unwrap();
    // Newer than whatever the shared target built last: cargo rebuilds.
    for file in ["src/main.rs", "Cargo.toml"] {
        fs::File::options()
            .append(true)
            .open(dir.join(file))
            .unwrap()
            .set_modified(SystemTime::now())
            .unwrap();
    }
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("student");
    let built = Command::new("make")
        .args(["-s", "all"])
        .arg(format!("TARGET={}", target.display()))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .expect("make");
    assert!(built.status.success(), "make {name}:\n{}", String::from_utf8_lossy(&built.stderr));
    Crate { root, dir }
}

/// The reference solution, built once for the tests that only run it. A
/// static is never dropped: the copy is kept in the target directory, and
/// replaced by the next run.
fn solution() -> &'static Path {
    static SOLVED: OnceLock<Crate> = OnceLock::new();
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("student-checker-solution");
    &SOLVED.get_or_init(|| build_at(root, "solution", true, &[])).dir
}

/// A running `./check`, in a process group of its own (as a shell puts a
/// command it starts), with its output collected. Dropped while it runs
/// (a test failed), it is stopped as a user would, so that it stops its
/// servers, and killed if that fails.
struct Checker {
    child: std::process::Child,
    output: Option<thread::JoinHandle<(Vec<u8>, Vec<u8>)>>,
}

impl Checker {
    fn start(dir: &Path, lang: &str, args: &[&str]) -> Checker {
        Checker::start_with(dir, lang, args, |_| {})
    }

    /// [`Checker::start`], with `setup` done on the command first.
    fn start_with(dir: &Path, lang: &str, args: &[&str], setup: impl FnOnce(&mut Command)) -> Checker {
        let mut command = Command::new("./check");
        setup(&mut command);
        let mut child = command
            .args(args)
            .current_dir(dir)
            .env("LANG", lang)
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("./check");
        let (mut stdout, mut stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let output = thread::spawn(move || {
            let errors = thread::spawn(move || {
                let mut text = Vec::new();
                let _ = stderr.read_to_end(&mut text);
                text
            });
            let mut text = Vec::new();
            let _ = stdout.read_to_end(&mut text);
            (text, errors.join().unwrap_or_default())
        });
        Checker { child, output: Some(output) }
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for the end (bounded by CHECK_TIME) and returns its output.
    fn finish(mut self) -> Output {
        let child = &mut self.child;
        let status = wait_until_within("./check to end", CHECK_TIME, || child.try_wait().unwrap());
        let (stdout, stderr) = self.output.take().unwrap().join().unwrap();
        Output { status, stdout, stderr }
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        if self.running() {
            signal(self.pid(), libc::SIGTERM);
            let _ = poll_until(TIMEOUT, || self.child.try_wait().ok().flatten());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `./check ARGS` in `dir` with LANG=`lang` to its end.
fn check(dir: &Path, lang: &str, args: &[&str]) -> Output {
    Checker::start(dir, lang, args).finish()
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The checker failed, and said, among the checks of the section titled
/// `title`, `seen` on a failed check, followed by what it expected and
/// where to look; the score line counts the exercise as lost.
fn assert_fails(output: &Output, spanish: bool, title: &str, seen: &[&str]) {
    let report = text(output);
    assert_eq!(output.status.code(), Some(1), "{report}{}", stderr_text(output));
    let section = report
        .split("\n\n")
        .find(|part| part.trim_start().starts_with(title))
        .unwrap_or_else(|| panic!("no section {title:?} in:\n{report}"));
    let lines: Vec<&str> = section.lines().collect();
    let (fail, expected, see) =
        if spanish { ("  [MAL]  ", "se esperaba: ", "mira: ") } else { ("  [FAIL] ", "expected: ", "see: ") };
    let at = lines
        .iter()
        .position(|l| l.starts_with(fail) && seen.iter().all(|s| l.contains(s)))
        .unwrap_or_else(|| panic!("{title}: a failed check that says {seen:?}:\n{report}"));
    assert!(lines[at + 1].trim_start().starts_with(expected), "what it expected:\n{report}");
    assert!(lines[at + 2].trim_start().starts_with(see), "where to look:\n{report}");
    let score = report.lines().last().unwrap_or("");
    assert_eq!(score, if spanish { "NOTA 0/1" } else { "SCORE 0/1" }, "the score line:\n{report}");
}

/// Runs `./check EXERCISE` in both languages on a cheat, and expects a
/// failure that says `english` (and `spanish`).
fn assert_caught(cheat: &Crate, exercise: &str, english: &[&str], spanish: &[&str]) {
    let output = check(&cheat.dir, "C", &[exercise]);
    assert_fails(&output, false, &format!("Exercise {exercise}:"), english);
    let output = check(&cheat.dir, "es_ES.UTF-8", &[exercise]);
    assert_fails(&output, true, &format!("Ejercicio {exercise}:"), spanish);
}

// The reference solution's parts that the cheats replace.
const REAPER_LOOP: &str = "    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}\n";
const INSTALL_REAPER: &str =
    "set_handler(Signal::SIGCHLD, SigHandler::Handler(reaper), SaFlags::SA_RESTART | SaFlags::SA_NOCLDSTOP);";
const ON_SIGTERM: &str = "    STOP.store(true, Ordering::SeqCst);\n";
const CHILD_EXITS: &str = "unsafe { libc::_exit(0) }";
const CHILD_STARTS: &str = "                drop(msock);\n";

#[test]
fn comers_loop_that_spins_in_the_reaper_fails_exercise_5() {
    // Comer's `>= 0`: waitpid returns 0 while a child is alive and none
    // has ended, and the loop never ends.
    let cheat = solution_with(
        "spin",
        &[(REAPER_LOOP, "    while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } >= 0 {}\n")],
    );
    assert_caught(
        &cheat,
        "5",
        &["the parent never rests: ", "s of CPU", "running (state R) at "],
        &["el padre no para: ", "s de CPU", "en marcha (estado R) en "],
    );
}

#[test]
fn a_blocking_waitpid_in_the_reaper_fails_exercise_5() {
    let cheat = solution_with(
        "block",
        &[(REAPER_LOOP, "    while unsafe { libc::waitpid(-1, &mut status, 0) } > 0 {}\n")],
    );
    assert_caught(
        &cheat,
        "5",
        &["with one client connected and another gone, a new client gets no echo"],
        &["con un cliente conectado y otro que ya se fue, un cliente nuevo no recibe eco"],
    );
}

#[test]
fn sigchld_ignored_fails_exercise_5() {
    // The kernel collects the children: no zombies, and no reaper.
    let cheat = solution_with(
        "sigign",
        &[
            (REAPER_LOOP, "    let _ = &mut status;\n"),
            (INSTALL_REAPER, "set_handler(Signal::SIGCHLD, SigHandler::SigIgn, SaFlags::empty());"),
        ],
    );
    assert_caught(
        &cheat,
        "5",
        &["the parent ignores SIGCHLD (SigIgn in /proc/PID/status)"],
        &["el padre ignora SIGCHLD (SigIgn en /proc/PID/status)"],
    );
}

#[test]
fn reaping_from_the_main_loop_fails_exercise_5() {
    // No handler: the loop wakes every 10 ms and collects.
    let cheat = solution_with(
        "mainloop",
        &[
            (INSTALL_REAPER, ""),
            (
                "PollTimeout::NONE) {\n            Ok(_) => {}",
                "PollTimeout::from(10u8)) {
            Ok(0) => {
                if cfg!(feature = \"reaper\") {
                    while let Ok(nix::sys::wait::WaitStatus::Exited(..) | nix::sys::wait::WaitStatus::Signaled(..)) =
                        nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
                    {}
                }
                continue;
            }
            Ok(_) => {}",
            ),
        ],
    );
    let output = check(&cheat.dir, "C", &["5"]);
    assert_fails(&output, false, "Exercise 5:", &["the parent has no SIGCHLD handler"]);
    assert!(
        text(&output).contains("expected: the exercise asks for a handler, the reaper"),
        "{}",
        text(&output)
    );
    let output = check(&cheat.dir, "es_ES.UTF-8", &["5"]);
    assert_fails(&output, true, "Ejercicio 5:", &["el padre no tiene manejador de SIGCHLD"]);
    assert!(
        text(&output).contains("se esperaba: el ejercicio pide un manejador, el reaper"),
        "{}",
        text(&output)
    );
}

#[test]
fn a_sigterm_handler_that_says_and_exits_fails_exercise_7() {
    let cheat = solution_with(
        "exit-in-handler",
        &[(
            ON_SIGTERM,
            "    let line = format!(\"[parent {}] closed msock (fd 3)\\n\", getpid());
    let _ = std::io::stderr().write_all(line.as_bytes());
    unsafe { libc::_exit(0) }
",
        )],
    );
    assert_caught(
        &cheat,
        "7",
        &[
            "on_sigterm() (src/main.rs) calls _exit (line ",
            "format! (line ",
            "it ends the process from inside the handler",
        ],
        &[
            "on_sigterm() (src/main.rs) llama a _exit (línea ",
            "termina el proceso desde dentro del manejador",
        ],
    );
}

#[test]
fn closed_msock_said_at_start_fails_exercise_7() {
    let cheat = solution_with(
        "said-at-start",
        &[
            ("    log(&format!(\"listening on", "    log(&format!(\"closed msock (fd {})\", msock.as_raw_fd()));\n    log(&format!(\"listening on"),
            // Spaced out, and the right call in a comment.
            (ON_SIGTERM, "    unsafe {  libc :: _exit ( 0 ) } // STOP.store(true, Ordering::SeqCst);\n"),
        ],
    );
    let output = check(&cheat.dir, "C", &["7"]);
    assert_fails(&output, false, "Exercise 7:", &["the parent says 'closed msock' before it gets SIGTERM"]);
    assert_fails(&output, false, "Exercise 7:", &["on_sigterm() (src/main.rs) calls _exit (line "]);
    let output = check(&cheat.dir, "es_ES.UTF-8", &["7"]);
    assert_fails(&output, true, "Ejercicio 7:", &["el padre dice «closed msock» antes de recibir SIGTERM"]);
    assert_fails(&output, true, "Ejercicio 7:", &["on_sigterm() (src/main.rs) llama a _exit (línea "]);
}

#[test]
fn a_handler_that_exits_through_a_function_of_the_file_fails_exercise_7() {
    let cheat = solution_with(
        "exit-in-a-helper",
        &[(
            ON_SIGTERM,
            "    goodbye();
}

fn goodbye() {
    log(\"closed msock (fd 3)\");
    exit(0);
",
        )],
    );
    assert_caught(
        &cheat,
        "7",
        &["calls exit (line ", ", in goodbye())", "format! (line ", ", in log())"],
        &["llama a exit (línea ", ", en goodbye())"],
    );
}

#[test]
fn a_handler_that_only_takes_note_passes_exercise_7_whatever_its_comments_and_layout() {
    // Other name, other layout; calls that would fail it in comments and
    // strings only.
    let solution = solution_with(
        "note-only",
        &[
            (
                "extern \"C\" fn on_sigterm(_sig: libc::c_int) {",
                "extern \"C\" fn r#note_the_stop(_sig: libc::c_int) {
    /* not _exit(0) here, nor close(msock): /* nested */ the loop does it */
    let _why = \"exit(0); println!(\\\"bye\\\")\"; let _brace = '{';",
            ),
            (ON_SIGTERM, "    STOP\n        .store(true, Ordering::SeqCst); // std::process::exit(0)\n"),
            (
                "set_handler(Signal::SIGTERM, SigHandler::Handler(on_sigterm), SaFlags::empty());",
                "set_handler(\n        Signal::SIGTERM,\n        SigHandler::Handler(note_the_stop),\n        SaFlags::empty(),\n    );",
            ),
        ],
    );
    let output = check(&solution.dir, "C", &["7"]);
    let report = text(&output);
    assert_eq!(output.status.code(), Some(0), "{report}");
    assert!(report.contains("[OK]   note_the_stop() only takes note"), "{report}");
    assert_eq!(report.lines().last(), Some("SCORE 1/1"), "{report}");
}

#[test]
fn a_reaper_left_empty_with_sa_nocldwait_fails_exercise_5() {
    // The kernel collects the children (no zombies), and the reaper does
    // nothing: named in the source, and seen at run time.
    let cheat = solution_with(
        "nocldwait",
        &[
            (REAPER_LOOP, "    let _ = &mut status;\n"),
            (INSTALL_REAPER, "set_handler(Signal::SIGCHLD, SigHandler::Handler(reaper), SaFlags::SA_RESTART | SaFlags::SA_NOCLDWAIT);"),
        ],
    );
    assert_caught(
        &cheat,
        "5",
        &["uses SA_NOCLDWAIT (line ", "the kernel collects the children itself"],
        &["usa SA_NOCLDWAIT (línea ", "el núcleo recoge a los hijos por su cuenta"],
    );
    let output = check(&cheat.dir, "C", &["5"]);
    assert_fails(
        &output,
        false,
        "Exercise 5:",
        &["a child that ends while its parent is stopped (SIGSTOP) vanishes without becoming a zombie"],
    );
    // By number, where no look at the source can see it: the run does.
    let hidden = solution_with(
        "nocldwait-by-number",
        &[
            (REAPER_LOOP, "    let _ = &mut status;\n"),
            (
                INSTALL_REAPER,
                "set_handler(Signal::SIGCHLD, SigHandler::Handler(reaper), SaFlags::from_bits_truncate(0x10000002));",
            ),
        ],
    );
    assert_caught(
        &hidden,
        "5",
        &["vanishes without becoming a zombie: the kernel collects it"],
        &["desaparece sin quedar zombi: lo recoge el núcleo"],
    );
}

#[test]
fn collecting_from_the_loop_fails_exercise_5() {
    // An empty reaper: the loop collects once poll fails with EINTR.
    const EINTR_ARM: &str = "Err(Errno::EINTR) => continue,";
    const COLLECT: &str = "Err(Errno::EINTR) => {
                let mut st = 0;
                // SAFETY: waitpid, from the loop.
                while unsafe { libc::waitpid(-1, &mut st, libc::WNOHANG) } > 0 {}
                continue;
            }";
    let empty =
        solution_with("loop-collects", &[(REAPER_LOOP, "    let _ = &mut status;\n"), (EINTR_ARM, COLLECT)]);
    assert_caught(
        &empty,
        "5",
        &["reaper() (src/main.rs) never calls waitpid: the SIGCHLD handler is the one that collects the children"],
        &["reaper() (src/main.rs) no llama a waitpid: el manejador de SIGCHLD es quien recoge a los hijos"],
    );
    // The reaper collects, and so does the loop.
    let both = solution_with("both-collect", &[(EINTR_ARM, COLLECT)]);
    assert_caught(
        &both,
        "5",
        &["waitpid (line ", ", in main()) collects children outside the reaper"],
        &["waitpid (línea ", ", en main()) recoge hijos fuera del reaper"],
    );
    // One waitpid, no loop: one SIGCHLD may stand for several children.
    let once = solution_with(
        "waitpid-once",
        &[(REAPER_LOOP, "    let _ = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };\n")],
    );
    assert_caught(
        &once,
        "5",
        &["reaper() (src/main.rs) calls waitpid (line ", "once, outside a loop: signals are not queued"],
        &["reaper() (src/main.rs) llama a waitpid (línea ", "una sola vez, fuera de un bucle"],
    );
}

#[test]
fn a_reaper_in_nix_words_passes_exercise_5() {
    // nix's waitpid in a `while let`, and a loop with a `match`: both
    // collect in a loop, both only in the reaper.
    for (name, body) in [
        (
            "nix-while-let",
            "    let _ = &mut status;
    while let Ok(nix::sys::wait::WaitStatus::Exited(..) | nix::sys::wait::WaitStatus::Signaled(..)) =
        nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG))
    {}
",
        ),
        (
            "loop-match",
            "    loop {
        // SAFETY: waitpid is async-signal-safe.
        match unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } {
            0 | -1 => break,
            _ => {}
        }
    }
",
        ),
    ] {
        let solved = solution_with(name, &[(REAPER_LOOP, body)]);
        let output = check(&solved.dir, "C", &["5"]);
        let report = text(&output);
        assert_eq!(output.status.code(), Some(0), "{name}: {report}");
        assert!(report.contains("[OK]   reaper() collects the children with waitpid, in a loop"), "{report}");
    }
}

#[test]
fn a_sigpipe_handler_that_logs_fails_exercise_6() {
    let cheat = solution_with(
        "sigpipe-logs",
        &[(
            "    SIGPIPE_COUNT.fetch_add(1, Ordering::SeqCst);\n",
            "    SIGPIPE_COUNT.fetch_add(1, Ordering::SeqCst);\n    log(\"SIGPIPE\");\n",
        )],
    );
    assert_caught(
        &cheat,
        "6",
        &["count_sigpipe() (src/main.rs) calls format! (line ", ", in log())", "it is not async-signal-safe"],
        &["count_sigpipe() (src/main.rs) llama a format! (línea ", "no es segura para señales"],
    );
}

#[test]
fn a_store_method_of_the_students_own_type_is_read_in_exercise_7() {
    // `.store()` of a type of the file, whose `store` says the line and
    // ends the process.
    let cheat = solution_with(
        "own-store",
        &[
            (
                "/// Whether this process is a child (for the log).",
                "struct Flag;
impl Flag {
    fn store(&self, _v: bool, _o: Ordering) {
        let line = b\"closed msock (fd 3)\\n\";
        // SAFETY: write and _exit are async-signal-safe.
        unsafe {
            libc::write(2, line.as_ptr().cast(), line.len());
            libc::_exit(0);
        }
    }
}
static STOPPED: Flag = Flag;
/// Whether this process is a child (for the log).",
            ),
            (ON_SIGTERM, "    STOPPED.store(true, Ordering::SeqCst);\n"),
        ],
    );
    assert_caught(
        &cheat,
        "7",
        &[
            "on_sigterm() (src/main.rs) calls _exit (line ",
            ", in store())",
            "it ends the process from inside the handler",
        ],
        &["on_sigterm() (src/main.rs) llama a _exit (línea ", ", en store())"],
    );
}

#[test]
fn a_handler_installed_by_number_is_read_in_exercise_7() {
    // No statement names SIGTERM: the handler is found as an extern "C"
    // function, and on_sigterm(), clean, is not all that is read.
    let cheat = solution_with(
        "by-number",
        &[
            (
                "/// Installs `handler` for `sig` with sigaction(2).",
                "extern \"C\" fn quit(_sig: libc::c_int) {
    log(&format!(\"closed msock (fd 3)\"));
    std::process::exit(0);
}

/// Installs `handler` for `sig` with sigaction(2).",
            ),
            (
                "set_handler(Signal::SIGTERM, SigHandler::Handler(on_sigterm), SaFlags::empty());",
                "// SAFETY: installing a handler.
    unsafe { libc::signal(15, quit as libc::sighandler_t) };",
            ),
        ],
    );
    assert_caught(
        &cheat,
        "7",
        &["quit() (src/main.rs) calls exit (line ", "format! (line "],
        &["quit() (src/main.rs) llama a exit (línea "],
    );
}

#[test]
fn a_handler_that_calls_through_a_pointer_or_drops_a_value_of_its_own_fails_exercise_7() {
    let cheat = solution_with(
        "pointer-and-drop",
        &[
            (
                "/// Whether this process is a child (for the log).",
                "struct Bye;
impl Drop for Bye {
    fn drop(&mut self) {
        // SAFETY: _exit is async-signal-safe.
        unsafe { libc::_exit(0) }
    }
}
static QUIT: [fn(i32) -> !; 1] = [exit];
/// Whether this process is a child (for the log).",
            ),
            (ON_SIGTERM, "    let _bye = Bye;\n    if STOP.swap(true, Ordering::SeqCst) {\n        QUIT[0](0);\n    }\n"),
        ],
    );
    assert_caught(
        &cheat,
        "7",
        &["calls _exit (line ", ", in Bye::drop())", "a function through a pointer (line "],
        &["llama a _exit (línea ", ", en Bye::drop())", "una función a través de un puntero (línea "],
    );
}

/// A server that, at its start, takes the checker's standard output
/// (pidfd_getfd) to write there, opens it through /proc/PID/fd, and
/// traces the checker (ptrace): what it managed to do, in the file
/// `TAKEOVER_MARK` names.
const TAKEOVER: &str = "fn takeover() {
    let mark = std::env::var(\"TAKEOVER_MARK\").unwrap_or_default();
    let mut done = String::new();
    // SAFETY: system calls on the parent, the checker.
    unsafe {
        let checker = libc::getppid();
        let pidfd = libc::syscall(libc::SYS_pidfd_open, checker, 0) as i32;
        let out = libc::syscall(libc::SYS_pidfd_getfd, pidfd, 1, 0) as i32;
        if out >= 0 {
            done.push_str(\"pidfd_getfd \");
            let forged = b\"FORGED\\n\";
            libc::write(out, forged.as_ptr().cast(), forged.len());
        }
        if std::fs::read_link(format!(\"/proc/{checker}/fd/1\")).is_ok() {
            done.push_str(\"/proc/PID/fd \");
        }
        if libc::ptrace(libc::PTRACE_ATTACH, checker, 0 as libc::c_long, 0 as libc::c_long) == 0 {
            done.push_str(\"ptrace \");
            let mut status = 0;
            libc::waitpid(checker, &mut status, libc::__WALL);
            libc::ptrace(libc::PTRACE_DETACH, checker, 0 as libc::c_long, 0 as libc::c_long);
        }
    }
    let _ = std::fs::write(mark, done);
}

/// Says what failed, in one line, and exits 1.";

#[test]
fn a_server_cannot_take_the_checker_over() {
    // The untouched skeleton, plus an attack at its start. The checker
    // runs as an ordinary user (nobody, if the test is root: root may
    // trace anything), as the server does.
    let cheat = skeleton_with(
        "takeover",
        &[
            (
                "    let port = port_from_arguments();",
                "    takeover();\n    let port = port_from_arguments();",
            ),
            ("/// Says what failed, in one line, and exits 1.", TAKEOVER),
        ],
    );
    let marks = cheat.root.join("marks");
    fs::create_dir(&marks).unwrap();
    fs::set_permissions(&marks, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let mark = marks.join("done");
    let output = Checker::start_with(&cheat.dir, "C", &["--json", "5"], |command| {
        command.env("TAKEOVER_MARK", &mark);
        if is_root() {
            command.uid(65534).gid(65534);
        }
    })
    .finish();
    let done = fs::read_to_string(&mark).unwrap_or_default();
    assert_eq!(done, "", "what the server managed to do to the checker");
    assert!(!text(&output).contains("FORGED"), "{}", text(&output));
    assert_eq!(output.status.code(), Some(1), "{}{}", text(&output), stderr_text(&output));
    let result = Json::parse(&text(&output)).expect("the checker's JSON");
    assert_eq!(result.at("score"), &Json::Number(0.0), "{}", text(&output));
}

#[test]
fn links_planted_in_tmpdir_redirect_nothing() {
    // Another user's links, where the checker once put its logs
    // (TMPDIR/tcpechod-check-PID-N.log), for the next few thousand PIDs.
    let scratch = scratch_root("planted");
    let tmp = scratch.join("tmp");
    fs::create_dir_all(&tmp).unwrap();
    let victim = scratch.join("victim.txt");
    fs::write(&victim, "precious\n").unwrap();
    let next: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|pid| pid.trim().parse().ok())
        .unwrap_or(std::process::id());
    for pid in next..next + 3000 {
        for n in 0..3 {
            std::os::unix::fs::symlink(&victim, tmp.join(format!("tcpechod-check-{pid}-{n}.log"))).unwrap();
        }
    }
    let planted = fs::read_dir(&tmp).unwrap().count();
    let output = Checker::start_with(solution(), "C", &["1"], |command| {
        command.env("TMPDIR", &tmp);
    })
    .finish();
    let victim_now = fs::read_to_string(&victim).unwrap();
    let left = fs::read_dir(&tmp).unwrap().count();
    let _ = fs::remove_dir_all(&scratch);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(victim_now, "precious\n", "the file a link points to is untouched");
    assert_eq!(left, planted, "the checker's own folder is gone");
}

#[test]
fn a_tmpdir_it_cannot_write_in_is_named_as_the_cause() {
    for (lang, seen, expected) in [
        (
            "C",
            "[FAIL] the checker cannot keep what ./TCPechod writes: /nonexistent/tmp: No such file or directory",
            "expected: a temporary folder the checker can write in (TMPDIR, or /tmp)",
        ),
        (
            "es_ES.UTF-8",
            "[MAL]  el comprobador no puede guardar lo que escribe ./TCPechod: /nonexistent/tmp:",
            "se esperaba: una carpeta temporal en la que el comprobador pueda escribir (TMPDIR, o /tmp)",
        ),
    ] {
        let output = Checker::start_with(solution(), lang, &["1"], |command| {
            command.env("TMPDIR", "/nonexistent/tmp");
        })
        .finish();
        let report = text(&output);
        assert_eq!(output.status.code(), Some(1), "{report}");
        assert!(report.contains(seen), "{report}");
        assert!(report.contains(expected), "{report}");
    }
}

#[test]
fn a_constant_sigpipe_count_fails_exercise_6() {
    // A fixed number: right for at most one of two children sent
    // different numbers of SIGPIPEs.
    let cheat = solution_with(
        "constant",
        &[
            ("    SIGPIPE_COUNT.fetch_add(1, Ordering::SeqCst);\n", ""),
            ("sigpipe count={count}", "sigpipe count=3"),
        ],
    );
    for _ in 0..2 {
        assert_caught(&cheat, "6", &["SIGPIPEs sent to the child", "sigpipe count=3"], &["SIGPIPE al hijo"]);
    }
}

/// The student's processes seen while the checker ran, by ancestry and by
/// process group, and the binary they run.
struct Watch {
    /// By PID and start time: a later process with the same number is not one of them.
    seen: HashSet<(i32, u64)>,
    groups: HashSet<i32>,
    binary: PathBuf,
}

impl Watch {
    fn new(cheat: &Crate) -> Watch {
        Watch { seen: HashSet::new(), groups: HashSet::new(), binary: cheat.dir.join("TCPechod") }
    }

    /// Notes the checker's descendants now; returns how many there are.
    fn look(&mut self, checker: i32) -> usize {
        let family = descendants(checker);
        for p in &family {
            self.seen.insert((p.pid, p.start_time));
            self.groups.insert(p.pgrp);
        }
        family.len()
    }

    /// What is left of them: a process seen, one in their groups, one
    /// running their binary (zombies included).
    fn left(&self) -> Vec<String> {
        all_processes()
            .into_iter()
            .filter(|p| {
                let same = self.seen.contains(&(p.pid, p.start_time));
                let exe = fs::read_link(format!("/proc/{}/exe", p.pid)).ok();
                same || self.groups.contains(&p.pgrp) || exe.as_deref() == Some(self.binary.as_path())
            })
            .map(|p| format!("{p:?}"))
            .collect()
    }
}

/// A child that starts three helpers in sessions of their own (they close
/// the client's socket: the client sees the end of the echo), serves its
/// client, and then never exits.
fn helpers_that_never_exit() -> Crate {
    solution_with(
        "never-exit",
        &[
            (
                CHILD_STARTS,
                "                drop(msock);
                for _ in 0..3 {
                    // SAFETY: one thread; the helper only sleeps.
                    if let Ok(ForkResult::Child) = unsafe { fork() } {
                        let _ = nix::unistd::setsid();
                        drop(asock);
                        loop {
                            std::thread::sleep(std::time::Duration::from_secs(60));
                        }
                    }
                }
",
            ),
            (CHILD_EXITS, "loop { std::thread::sleep(std::time::Duration::from_secs(60)); }"),
        ],
    )
}

/// Starts `./check ARGS`, waits until the student's processes number at
/// least `count`, stops the checker with `stop`, and asserts that it ends
/// with `code` and leaves nothing behind.
fn stop_in_the_middle(args: &[&str], count: usize, stop: impl FnOnce(&Checker), code: i32) {
    let cheat = helpers_that_never_exit();
    let mut watch = Watch::new(&cheat);
    let checker = Checker::start(&cheat.dir, "C", args);
    let pid = checker.pid();
    wait_until(&format!("{count} processes of the student's server"), || {
        (watch.look(pid) >= count).then_some(())
    });
    stop(&checker);
    let output = checker.finish();
    assert_eq!(output.status.code(), Some(code), "{}{}", text(&output), stderr_text(&output));
    assert_eq!(stderr_text(&output).lines().count(), 1, "one line: {}", stderr_text(&output));
    assert!(stderr_text(&output).starts_with("check: interrupted"), "{}", stderr_text(&output));
    assert_eq!(watch.left(), Vec::<String>::new(), "left behind by the checker");
}

#[test]
fn ctrl_c_in_the_middle_leaves_no_process_behind() {
    // Ctrl-C: SIGINT to the terminal's foreground process group, the
    // checker's; the servers are in groups of their own.
    // Exercise 5's 50 clients: each child starts 3 helpers.
    stop_in_the_middle(&["5"], 12, |checker| signal(-checker.pid(), libc::SIGINT), 130);
}

#[test]
fn sigterm_in_the_middle_leaves_no_process_behind() {
    stop_in_the_middle(&["5"], 12, |checker| signal(checker.pid(), libc::SIGTERM), 143);
}

#[test]
fn at_its_end_the_checker_leaves_no_process_behind() {
    // The children serve, count, and say so: exercise 6 passes; then they
    // and their helpers live on, until the checker stops them.
    let cheat = helpers_that_never_exit();
    let mut watch = Watch::new(&cheat);
    let checker = Checker::start(&cheat.dir, "C", &["6"]);
    let pid = checker.pid();
    // The server, and two children with three helpers each.
    let all = 1 + 2 * (1 + 3);
    wait_until("the children and their helpers", || (watch.look(pid) >= all).then_some(()));
    let output = checker.finish();
    assert_eq!(output.status.code(), Some(0), "{}{}", text(&output), stderr_text(&output));
    assert_eq!(watch.left(), Vec::<String>::new(), "left behind by the checker");
}

#[test]
fn a_fork_bomb_is_stopped_at_the_process_limit() {
    // Bounded, so that a broken checker cannot take the machine: each
    // child forks 300 sleepers.
    let cheat = solution_with(
        "fork-bomb",
        &[(
            CHILD_STARTS,
            "                drop(msock);
                for _ in 0..300 {
                    // SAFETY: one thread; the new process only sleeps.
                    match unsafe { fork() } {
                        Ok(ForkResult::Child) => loop {
                            std::thread::sleep(std::time::Duration::from_secs(60));
                        },
                        Ok(ForkResult::Parent { .. }) => {}
                        Err(_) => break,
                    }
                }
",
        )],
    );
    let mut watch = Watch::new(&cheat);
    let mut checker = Checker::start(&cheat.dir, "C", &["6"]);
    let pid = checker.pid();
    // What it starts is noted at every look, until it ends.
    poll_until(CHECK_TIME, || {
        watch.look(pid);
        (!checker.running()).then_some(())
    });
    let output = checker.finish();
    let report = text(&output);
    assert_eq!(output.status.code(), Some(1), "{report}");
    // Root is exempt from RLIMIT_NPROC: then only the watchdog stops it.
    if is_root() {
        assert!(
            report.contains("processes at once, more than the 100 the checker allows: it stopped them all"),
            "{report}"
        );
    }
    assert_eq!(watch.left(), Vec::<String>::new(), "left behind by the checker");
}

#[test]
fn the_solution_scores_3_of_3_in_text_and_in_json() {
    let output = check(solution(), "C", &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let result = Json::parse(&text(&output)).expect("the checker's JSON");
    assert_eq!(result.at("passed"), &Json::Bool(true));
    assert_eq!(result.at("score"), &Json::Number(3.0));
    assert_eq!(result.at("out_of"), &Json::Number(3.0));
    assert_eq!(result.at("language"), &Json::String("en".into()));
    let names: HashMap<&str, Vec<&str>> = [
        ("1", vec!["echo", "two-clients", "child-closes-msock", "parent-closes-asock"]),
        (
            "5",
            vec![
                "no-zombies",
                "sigchld-handler",
                "reaper-collects-in-a-loop",
                "parent-idle-while-a-child-lives",
                "noreaper-leaves-zombies",
            ],
        ),
        (
            "6",
            vec!["sigpipe-handler", "child-survives-sigpipe", "sigpipe-count", "sigpipe-handler-only-counts"],
        ),
        (
            "7",
            vec![
                "sigterm-exit-0",
                "closed-msock-after-sigterm",
                "sigterm-handler-only-notes",
                "port-free-child-serves",
            ],
        ),
    ]
    .into();
    for (exercise, expected) in &names {
        let exercise = result.at("exercises").at(exercise);
        assert_eq!(exercise.at("passed"), &Json::Bool(true));
        let checks = exercise.at("checks").items();
        let seen: Vec<&str> = checks.iter().map(|c| c.at("name").text()).collect();
        assert_eq!(&seen, expected);
        for check in checks {
            assert_eq!(check.at("ok"), &Json::Bool(true));
            assert!(!check.at("message").text().is_empty());
        }
    }
    let output = check(solution(), "es_ES.UTF-8", &["6"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(text(&output).lines().last(), Some("NOTA 1/1"));
    let output = check(solution(), "C", &["1"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert!(!text(&output).contains("SCORE"), "no exercise to score:\n{}", text(&output));
}

#[test]
fn the_json_escapes_what_the_messages_hold() {
    // The reaper's version named as the one without it: exercise 5 fails
    // on a message that quotes `#[cfg(feature = "reaper")]`.
    for (lang, hint) in [
        ("C", "goes under #[cfg(feature = \"reaper\")]"),
        ("es_ES.UTF-8", "va bajo #[cfg(feature = \"reaper\")]"),
    ] {
        let output = check(solution(), lang, &["--json", "--noreaper", "./TCPechod", "5"]);
        assert_eq!(output.status.code(), Some(1), "{}", text(&output));
        let result = Json::parse(&text(&output)).expect("the checker's JSON");
        assert_eq!(result.at("passed"), &Json::Bool(false));
        assert_eq!(result.at("score"), &Json::Number(0.0));
        assert_eq!(result.at("out_of"), &Json::Number(1.0));
        let exercise = result.at("exercises").at("5");
        assert_eq!(exercise.at("passed"), &Json::Bool(false));
        let failed: Vec<&Json> =
            exercise.at("checks").items().iter().filter(|c| c.at("ok") == &Json::Bool(false)).collect();
        assert_eq!(failed.len(), 1, "{}", text(&output));
        assert_eq!(failed[0].at("name").text(), "noreaper-leaves-zombies");
        assert!(failed[0].at("see").text().contains(hint), "{}", text(&output));
        assert!(!failed[0].at("expected").text().is_empty());
    }
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    let dir = solution();
    for (args, words) in [
        (&["8"][..], &["no exercise '8'"][..]),
        (&["--bogus"], &["unknown option '--bogus'"]),
        (&["--server"], &["--server needs a path"]),
        (&["--server", "./nothing-here", "1"], &["./nothing-here is missing"]),
        (&["--source", "nothing.rs", "7"], &["nothing.rs, is missing"]),
    ] {
        let output = check(dir, "C", args);
        assert_one_line_error(&output, 2, "check", words);
        assert!(output.stdout.is_empty(), "{args:?}: {}", text(&output));
    }
    let output = check(dir, "es_ES.UTF-8", &["8"]);
    assert_one_line_error(&output, 2, "check", &["no hay ejercicio «8»"]);
    let output = check(dir, "C", &["--help"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(text(&output).starts_with("usage: check "), "{}", text(&output));
    let output = check(dir, "es_ES.UTF-8", &["--help"]);
    assert!(text(&output).starts_with("uso: check "), "{}", text(&output));
}
