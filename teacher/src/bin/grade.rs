//! grade: the grading of a course's submissions, one CSV line each (the
//! design: `teacher::grade`). Run through `teacher/grade`, which builds it:
//!
//! ```text
//! teacher/grade [OPTIONS] FOLDER > grades.csv
//! ```
//!
//! Run it as root: the students' code then runs as an unprivileged user
//! (`--user`), in namespaces of its own. Not as root it refuses, unless
//! told `--as-me`.
//!
//! Exit status: 0 when every submission was graded (whatever its grade);
//! 1 when grading could not run (not root without `--as-me`, no such
//! folder, the checker or the untouched student crate does not build, the
//! CSV cannot be written); 2 for a usage error; 130, 143 or 129 when
//! SIGINT, SIGTERM or SIGHUP stopped it, after it stopped every process
//! it had started.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use tcpechod::cli::{parse_args, whole_number};
use teacher::{grade, processes};

/// The grading of the lab's exercises 5, 6 and 7 and of its answer sheet,
/// over a folder of submissions.
///
/// Each submission (an entrega-USER.tar.gz of `make entrega`, a folder
/// holding main.rs and RESPUESTAS.md or ANSWER_SHEET.md, or a student's
/// cloned repository) is built in a clean copy of labs/student (only its
/// main.rs is the student's) and checked by this tree's checker, each
/// exercise within its own time. The CSV, sorted by student:
/// student,build,ex5,ex6,ex7,score,answers,seconds,notes.
///
/// Run it as root (sudo): the students' code (the compiler on their
/// source, their servers) then runs as --user, in namespaces of its own.
/// Not as root, it refuses to run unless given --as-me.
#[derive(Parser)]
#[command(name = "grade")]
struct Cli {
    /// The folder of submissions.
    folder: PathBuf,
    /// Writes the CSV to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The longest the build of one submission may take, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300, value_parser = whole_number(1, 86_400))]
    build_timeout: u64,
    /// The longest the checker may take on one exercise of one submission, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = whole_number(1, 86_400))]
    check_timeout: u64,
    /// When run as root: the unprivileged user that builds and runs the students' code.
    #[arg(long, value_name = "NAME", default_value = "nobody")]
    user: String,
    /// Not as root: runs the students' code as yourself, with your rights (it could read and change your files).
    #[arg(long)]
    as_me: bool,
    /// Keeps each submission's build output and checker results in DIR.
    #[arg(long, value_name = "DIR")]
    logs: Option<PathBuf>,
    /// Where cargo builds the checker (and, with --as-me, the submissions), kept for the next run (one run at a time); by default a folder of the run, removed at its end.
    #[arg(long, value_name = "DIR")]
    target_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    // The students' code may run as this user (--as-me): it must not be
    // able to ptrace the grader, nor write the CSV through
    // /proc/PID/fd. What the grader starts is dumpable again (execve).
    let _ = nix::sys::prctl::set_dumpable(false);
    let cli: Cli = parse_args("grade");
    let spanish = ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .is_some_and(|value| value.starts_with("es"));
    let root = nix::unistd::geteuid().is_root();
    if root && cli.as_me {
        say(
            spanish,
            "--as-me es para quien no es root; como root, el código de los estudiantes se ejecuta como --user",
            "--as-me is for a grader that is not root; as root, the students' code runs as --user",
        );
        return ExitCode::from(2);
    }
    if !root && !cli.as_me {
        say(
            spanish,
            "no eres root: el código de los estudiantes se ejecutaría con tus permisos (podría leer y cambiar tus ficheros, y el CSV); ejecútalo como root (sudo), que lo ejecuta como --user, o añade --as-me para hacerlo así de todos modos",
            "not root: the students' code would run with your rights (it could read and change your files, and the CSV); run it as root (sudo), which runs that code as --user, or add --as-me to run it as yourself anyway",
        );
        return ExitCode::from(1);
    }
    stop_on_signals(spanish);
    if processes::become_subreaper().is_err() {
        say(
            spanish,
            "aviso: no se puede ser subreaper; un proceso huérfano de una entrega podría quedar en marcha",
            "warning: cannot become a subreaper; an orphan of a submission could be left running",
        );
    }
    let options = grade::Options {
        folder: cli.folder,
        out: cli.out,
        build_timeout: Duration::from_secs(cli.build_timeout),
        check_timeout: Duration::from_secs(cli.check_timeout),
        user: cli.user,
        as_me: cli.as_me,
        logs: cli.logs,
        target_dir: cli.target_dir,
        spanish,
    };
    match grade::run(&options) {
        Ok(count) => {
            say(
                spanish,
                &format!("hecho: {count} entregas corregidas"),
                &format!("done: {count} submissions graded"),
            );
            ExitCode::SUCCESS
        }
        Err(fatal) => {
            say(spanish, &fatal.es, &fatal.en);
            ExitCode::from(1)
        }
    }
}

fn say(spanish: bool, es: &str, en: &str) {
    let _ = writeln!(std::io::stderr(), "grade: {}", if spanish { es } else { en });
}

/// On SIGINT, SIGTERM or SIGHUP: every process started is stopped, the
/// folder of the run removed, and the grader exits 128 + the signal.
fn stop_on_signals(spanish: bool) {
    let mut stops = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        stops.add(sig);
    }
    // Blocked before any thread exists: only the thread below takes them.
    // (Every command started gets an empty mask back: std resets it.)
    if stops.thread_block().is_err() {
        return;
    }
    std::thread::spawn(move || {
        let Ok(sig) = stops.wait() else { return };
        grade::INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
        processes::stop_all();
        grade::clean_up();
        say(
            spanish,
            &format!("interrumpido ({sig}): el CSV tiene las entregas corregidas hasta ahora"),
            &format!("interrupted ({sig}): the CSV holds the submissions graded so far"),
        );
        std::process::exit(128 + sig as i32);
    });
}
