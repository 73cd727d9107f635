//! Grading a course: every submission of a folder built in a clean copy of
//! the student's crate, checked by the teacher's own checker, and written
//! as one CSV line.
//!
//! For each submission, in the order of the students' names:
//! 1. it is opened (`submission`): a tarball is unpacked safely, or
//!    refused;
//! 2. its answer sheet is counted (`answers`);
//! 3. its `main.rs`, and nothing else of it, goes into a copy of the
//!    untouched student crate from this tree, whose Cargo.toml and
//!    Cargo.lock are the teacher's: no dependency nor build script of the
//!    student's is ever built. Both versions are built (with the reaper,
//!    and without it), offline, within the build's time;
//! 4. the checker of this tree (labs/checker, built once at the start)
//!    runs each of exercises 5, 6 and 7 on its own, with `--json`, each
//!    within the check's time: a server that hangs or stops the checker
//!    costs only that exercise of that student.
//!
//! Every process a submission starts is stopped before the next one
//! (`processes`). When the grader runs as root, the checker and the
//! student's servers run as an unprivileged user (`nobody` unless told
//! otherwise): the checker's RLIMIT_NPROC then holds a fork bomb back
//! (root is exempt from it), and the student's code cannot touch the
//! teacher's files nor the grader.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tcpechod::support::log::reason;

use crate::answers::SHEETS;
use crate::json::Json;
use crate::processes::{self, Ended};
use crate::submission::{self, Submission};

/// The first line of the CSV.
pub const HEADER: &str = "student,build,ex5,ex6,ex7,score,answers,seconds,notes";
/// The exercises the checker scores, in the CSV's order.
pub const EXERCISES: [&str; 3] = ["5", "6", "7"];
/// The longest the first builds (the checker, the untouched crate, with
/// their dependencies, maybe downloaded) may take.
const FIRST_BUILD_TIME: Duration = Duration::from_secs(900);

/// What the command line asked for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The folder of submissions.
    pub folder: PathBuf,
    /// The CSV file (standard output if none).
    pub out: Option<PathBuf>,
    /// The longest the two builds of one submission may take together.
    pub build_timeout: Duration,
    /// The longest the checker may take on one exercise of one submission.
    pub check_timeout: Duration,
    /// The user that runs the checker and the servers, when run as root.
    pub user: String,
    /// Where to keep each submission's build output and checker results.
    pub logs: Option<PathBuf>,
    /// Where cargo builds; a folder of the run, removed at its end, if none.
    pub target_dir: Option<PathBuf>,
    /// Messages in Spanish (the CSV is in English whatever the language).
    pub spanish: bool,
}

/// Why grading could not run at all, in Spanish and in English.
#[derive(Debug)]
pub struct Fatal {
    pub es: String,
    pub en: String,
}

fn fatal(es: impl Into<String>, en: impl Into<String>) -> Fatal {
    Fatal { es: es.into(), en: en.into() }
}

/// How the build of a submission went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    Ok,
    Failed,
    Timeout,
    Refused,
}

impl Build {
    fn word(self) -> &'static str {
        match self {
            Build::Ok => "ok",
            Build::Failed => "failed",
            Build::Timeout => "timeout",
            Build::Refused => "refused",
        }
    }
}

/// One student's line of the CSV.
#[derive(Debug, Clone)]
pub struct Line {
    pub student: String,
    pub build: Build,
    /// Whether exercises 5, 6 and 7 passed.
    pub passed: [bool; 3],
    pub answers: usize,
    pub questions: usize,
    pub seconds: f64,
    /// Why something failed, short, in English.
    pub notes: Vec<String>,
}

impl Line {
    /// The line as the CSV holds it (RFC 4180), without its newline.
    pub fn csv(&self) -> String {
        let score = self.passed.iter().filter(|&&p| p).count();
        let fields = [
            self.student.clone(),
            self.build.word().into(),
            u8::from(self.passed[0]).to_string(),
            u8::from(self.passed[1]).to_string(),
            u8::from(self.passed[2]).to_string(),
            format!("{score}/{}", EXERCISES.len()),
            format!("{}/{}", self.answers, self.questions),
            format!("{:.1}", self.seconds),
            self.notes.join("; "),
        ];
        fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(",")
    }
}

/// A CSV field, quoted when it must be.
fn csv_field(text: &str) -> String {
    // Written as text, never read as a formula by a spreadsheet.
    let text = match text.starts_with(['=', '+', '-', '@']) {
        true => format!("'{text}"),
        false => text.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// The folder of the run now, removed by [`clean_up`] (also on an interrupt).
static WORK: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Removes the folder of the run, if any.
pub fn clean_up() {
    let work = WORK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    if let Some(work) = work {
        let _ = fs::remove_dir_all(work);
    }
}

/// Grades every submission of `options.folder`, writing the CSV as it
/// goes; Err when it cannot run at all.
pub fn run(options: &Options) -> Result<usize, Fatal> {
    let grader = Grader::new(options)?;
    let result = grader.grade_all();
    clean_up();
    result
}

/// What a run needs: the teacher's tree, the folder of the run, the
/// checker, and the user the student's code runs as.
struct Grader<'a> {
    options: &'a Options,
    /// The top of the teacher's tree (this crate's parent).
    root: PathBuf,
    work: PathBuf,
    target: PathBuf,
    checker: PathBuf,
    /// The copy of the student's crate that builds each submission.
    crate_dir: PathBuf,
    /// (uid, gid) of the user the checker runs as, when run as root.
    run_as: Option<(u32, u32)>,
    /// The questions of the answer sheet, by number.
    questions: BTreeSet<u32>,
    cargo: String,
}

impl<'a> Grader<'a> {
    fn new(options: &'a Options) -> Result<Grader<'a>, Fatal> {
        let folder = options.folder.display();
        if !options.folder.is_dir() {
            return Err(fatal(
                format!("{folder} no es una carpeta (la de las entregas)"),
                format!("{folder} is not a folder (the one with the submissions)"),
            ));
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new("/")).to_path_buf();
        for needed in
            ["labs/student/Cargo.toml", "labs/student/src/main.rs", "labs/checker/Cargo.toml", SHEETS[0].file]
        {
            if !root.join(needed).is_file() {
                let path = root.join(needed);
                return Err(fatal(
                    format!("falta {} en el árbol del profesor", path.display()),
                    format!("{} is missing from the teacher's tree", path.display()),
                ));
            }
        }
        let questions = fs::read_to_string(root.join(SHEETS[0].file))
            .map(|text| SHEETS[0].questions(&text))
            .unwrap_or_default();
        let run_as = match nix::unistd::geteuid().is_root() {
            false => None,
            true => {
                let user = &options.user;
                match nix::unistd::User::from_name(user) {
                    Ok(Some(u)) if !u.uid.is_root() => Some((u.uid.as_raw(), u.gid.as_raw())),
                    Ok(Some(_)) => {
                        return Err(fatal(
                            format!("--user {user}: debe ser un usuario sin privilegios, no root"),
                            format!("--user {user}: it must be an unprivileged user, not root"),
                        ))
                    }
                    _ => {
                        return Err(fatal(
                            format!("como root, los servidores de los estudiantes se ejecutan como un usuario sin privilegios, y no existe el usuario «{user}»: elige otro con --user"),
                            format!("as root, the students' servers run as an unprivileged user, and there is no user '{user}': choose one with --user"),
                        ))
                    }
                }
            }
        };
        let work = std::env::temp_dir().join(format!("tcpechod-grade-{}", std::process::id()));
        let cannot = |what: &Path, err: io::Error| {
            fatal(
                format!("no se puede crear {}: {}", what.display(), reason(&err)),
                format!("cannot create {}: {}", what.display(), reason(&err)),
            )
        };
        let _ = fs::remove_dir_all(&work);
        fs::create_dir(&work).map_err(|err| cannot(&work, err))?;
        *WORK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(work.clone());
        // Readable by the user the checker runs as; writable by it only
        // in tmp/, where the checker keeps the servers' logs.
        for dir in [&work, &work.join("bin"), &work.join("crate/src"), &work.join("tmp")] {
            fs::create_dir_all(dir).map_err(|err| cannot(dir, err))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).map_err(|err| cannot(dir, err))?;
        }
        if let Some((uid, gid)) = run_as {
            let tmp = work.join("tmp");
            nix::unistd::chown(&tmp, Some(uid.into()), Some(gid.into()))
                .map_err(|errno| cannot(&tmp, io::Error::from(errno)))?;
        }
        let target = options.target_dir.clone().unwrap_or_else(|| work.join("target"));
        fs::create_dir_all(&target).map_err(|err| cannot(&target, err))?;
        let target = target.canonicalize().map_err(|err| cannot(&target, err))?;
        Ok(Grader {
            options,
            checker: work.join("bin/check"),
            crate_dir: work.join("crate"),
            root,
            work,
            target,
            run_as,
            questions,
            cargo: std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()),
        })
    }

    fn say(&self, es: &str, en: &str) {
        let _ = writeln!(io::stderr(), "grade: {}", if self.options.spanish { es } else { en });
    }

    fn grade_all(&self) -> Result<usize, Fatal> {
        let (submissions, skipped) = submission::find(&self.options.folder).map_err(|err| {
            let folder = self.options.folder.display();
            fatal(
                format!("no se puede leer {folder}: {}", reason(&err)),
                format!("cannot read {folder}: {}", reason(&err)),
            )
        })?;
        let mut out: Box<dyn Write> = match &self.options.out {
            None => Box::new(io::stdout()),
            Some(path) => Box::new(File::create(path).map_err(|err| {
                fatal(
                    format!("no se puede crear {}: {}", path.display(), reason(&err)),
                    format!("cannot create {}: {}", path.display(), reason(&err)),
                )
            })?),
        };
        for name in &skipped {
            self.say(
                &format!("se salta {name}: no es una entrega"),
                &format!("skipping {name}: not a submission"),
            );
        }
        self.say(
            &format!(
                "{} entregas; se compila el comprobador y el crate del estudiante sin tocar",
                submissions.len()
            ),
            &format!(
                "{} submissions; building the checker and the untouched student crate",
                submissions.len()
            ),
        );
        self.build_checker()?;
        self.build_untouched()?;
        let write_failed = |err: io::Error| {
            fatal(
                format!("no se puede escribir el CSV: {}", reason(&err)),
                format!("cannot write the CSV: {}", reason(&err)),
            )
        };
        writeln!(out, "{HEADER}").and_then(|_| out.flush()).map_err(write_failed)?;
        for (n, submission) in submissions.iter().enumerate() {
            let line = self.grade(submission);
            writeln!(out, "{}", line.csv()).and_then(|_| out.flush()).map_err(write_failed)?;
            let score = line.passed.iter().filter(|&&p| p).count();
            let (build_es, build_en) = match line.build {
                Build::Ok => ("compila", "builds"),
                Build::Failed => ("no compila", "does not build"),
                Build::Timeout => ("no terminó de compilar a tiempo", "build timed out"),
                Build::Refused => ("rechazada", "refused"),
            };
            let (i, total, student, answers) = (n + 1, submissions.len(), &line.student, line.answers);
            let (questions, seconds) = (line.questions, line.seconds);
            self.say(
                &format!("[{i}/{total}] {student}: {build_es}, nota {score}/3, respuestas {answers}/{questions}, {seconds:.1} s"),
                &format!("[{i}/{total}] {student}: {build_en}, score {score}/3, answers {answers}/{questions}, {seconds:.1} s"),
            );
        }
        Ok(submissions.len())
    }

    /// Runs cargo with `args` (stdout and stderr into `log`) within `limit`.
    fn cargo(&self, args: &[&str], log: &Path, limit: Duration) -> io::Result<Ended> {
        let output = File::create(log)?;
        let mut command = Command::new(&self.cargo);
        command.args(args).stdin(Stdio::null()).stdout(output.try_clone()?).stderr(output);
        processes::run(&mut command, limit)
    }

    /// The checker of this tree, built once, into bin/check.
    fn build_checker(&self) -> Result<(), Fatal> {
        let manifest = self.root.join("labs/checker/Cargo.toml");
        let target = self.target.join("checker");
        let log = self.work.join("checker-build.txt");
        let args = [
            "build",
            "--release",
            "--locked",
            "--manifest-path",
            path_str(&manifest),
            "--target-dir",
            path_str(&target),
        ];
        if !self.finished_ok(self.cargo(&args, &log, FIRST_BUILD_TIME)) {
            return Err(fatal(
                format!("no se puede compilar el comprobador (labs/checker):\n{}", tail(&log)),
                format!("cannot build the checker (labs/checker):\n{}", tail(&log)),
            ));
        }
        copy_executable(&target.join("release/check"), &self.checker).map_err(|err| {
            fatal(
                format!("no se puede copiar el comprobador: {}", reason(&err)),
                format!("cannot copy the checker: {}", reason(&err)),
            )
        })
    }

    /// The untouched student crate, copied and built once: what each
    /// submission is built in, with its dependencies built (and fetched).
    fn build_untouched(&self) -> Result<(), Fatal> {
        let from = self.root.join("labs/student");
        let copied = ["Cargo.toml", "Cargo.lock", "src/main.rs"]
            .iter()
            .try_for_each(|file| fs::copy(from.join(file), self.crate_dir.join(file)).map(drop));
        if let Err(err) = copied {
            return Err(fatal(
                format!("no se puede copiar labs/student: {}", reason(&err)),
                format!("cannot copy labs/student: {}", reason(&err)),
            ));
        }
        let log = self.work.join("student-build.txt");
        let (built, _) = self.build_both(&log, FIRST_BUILD_TIME, false);
        if built != Build::Ok {
            return Err(fatal(
                format!("el crate del estudiante, sin tocar, no compila aquí:\n{}", tail(&log)),
                format!("the student's crate, untouched, does not build here:\n{}", tail(&log)),
            ));
        }
        Ok(())
    }

    fn finished_ok(&self, ended: io::Result<Ended>) -> bool {
        matches!(ended, Ok(Ended::Finished(status)) if status.success())
    }

    /// Builds the crate copy with the reaper and without it, within
    /// `limit` for both; offline after the first build. How it went, and
    /// whether it was the version without the reaper that did not build.
    fn build_both(&self, log: &Path, limit: Duration, offline: bool) -> (Build, bool) {
        let manifest = self.crate_dir.join("Cargo.toml");
        let deadline = Instant::now() + limit;
        for (noreaper, variant, extra) in
            [(false, "student", None), (true, "student-noreaper", Some("--no-default-features"))]
        {
            let target = self.target.join(variant);
            // A binary of the last submission must never pass for this one's.
            let _ = fs::remove_file(target.join("release/TCPechod"));
            let mut args = vec!["build", "--release", "--locked", "--manifest-path", path_str(&manifest)];
            args.extend(["--target-dir", path_str(&target)]);
            args.extend(extra);
            if offline {
                args.push("--offline");
            }
            let part = log.with_extension(format!("{variant}.txt"));
            let left = deadline.saturating_duration_since(Instant::now());
            let ended = self.cargo(&args, &part, left);
            append(log, &part);
            match ended {
                Ok(Ended::Finished(status)) if status.success() => {}
                Ok(Ended::TimedOut) => return (Build::Timeout, noreaper),
                _ => return (Build::Failed, noreaper),
            }
        }
        (Build::Ok, false)
    }

    /// Grades one submission: its line of the CSV.
    fn grade(&self, submission: &Submission) -> Line {
        let started = Instant::now();
        let mut line = Line {
            student: submission.student.clone(),
            build: Build::Refused,
            passed: [false; 3],
            answers: 0,
            questions: self.questions.len(),
            seconds: 0.0,
            notes: Vec::new(),
        };
        let scratch = self.work.join("unpacked");
        let _ = fs::remove_dir_all(&scratch);
        let opened = fs::create_dir(&scratch).map_err(|err| format!("cannot unpack it: {}", reason(&err)));
        let files = opened.and_then(|()| submission::open(submission, &scratch));
        let _ = fs::remove_dir_all(&scratch);
        let files = match files {
            Ok(files) => files,
            Err(why) => {
                line.notes.push(format!("refused: {why}"));
                line.seconds = started.elapsed().as_secs_f64();
                return line;
            }
        };
        // A question answered in either sheet counts once.
        let mut answered = BTreeSet::new();
        for (sheet, text) in &files.sheets {
            answered.extend(sheet.answered(text));
        }
        line.answers = answered.intersection(&self.questions).count();
        if files.sheets.is_empty() {
            line.notes.push("no answer sheet".into());
        }

        let build_log = self.work.join("build.txt");
        let _ = fs::remove_file(&build_log);
        let (build, noreaper) = match write_source(&self.crate_dir.join("src/main.rs"), &files.main_rs) {
            Ok(()) => self.build_both(&build_log, self.options.build_timeout, true),
            Err(err) => {
                line.notes.push(format!("cannot write main.rs: {}", reason(&err)));
                (Build::Failed, false)
            }
        };
        line.build = build;
        let without = if noreaper { " without the reaper feature" } else { "" };
        match line.build {
            Build::Ok => self.check(&files.main_rs, &mut line),
            Build::Timeout => line.notes.push(format!(
                "build{without}: longer than {} s in all",
                self.options.build_timeout.as_secs()
            )),
            _ => line.notes.push(format!("does not compile{without}: {}", first_error(&build_log))),
        }
        self.keep_log(&line.student, "build.txt", &build_log);
        line.seconds = started.elapsed().as_secs_f64();
        line
    }

    /// Runs the checker on each exercise of a built submission.
    fn check(&self, main_rs: &[u8], line: &mut Line) {
        let run = self.work.join("run");
        let _ = fs::remove_dir_all(&run);
        let ready = fs::create_dir(&run)
            .and_then(|()| fs::set_permissions(&run, fs::Permissions::from_mode(0o755)))
            .and_then(|()| {
                copy_executable(&self.target.join("student/release/TCPechod"), &run.join("TCPechod"))
            })
            .and_then(|()| {
                let noreaper = self.target.join("student-noreaper/release/TCPechod");
                copy_executable(&noreaper, &run.join("TCPechod-noreaper"))
            })
            .and_then(|()| fs::write(run.join("main.rs"), main_rs))
            .and_then(|()| fs::set_permissions(run.join("main.rs"), fs::Permissions::from_mode(0o644)));
        if let Err(err) = ready {
            line.notes.push(format!("cannot prepare the run: {}", reason(&err)));
            return;
        }
        for (i, exercise) in EXERCISES.iter().enumerate() {
            let (passed, note) = self.check_one(&run, exercise, &line.student);
            line.passed[i] = passed;
            line.notes.extend(note);
        }
    }

    /// One exercise: whether it passed, and why not.
    fn check_one(&self, run: &Path, exercise: &str, student: &str) -> (bool, Option<String>) {
        let (json, errors) = (self.work.join("check.json"), self.work.join("check.err"));
        let files = File::create(&json).and_then(|out| Ok((out, File::create(&errors)?)));
        let Ok((out, err)) = files else {
            return (false, Some(format!("ex{exercise}: cannot run the checker")));
        };
        let mut command = Command::new(&self.checker);
        command
            .args([
                "--json",
                "--server",
                "./TCPechod",
                "--noreaper",
                "./TCPechod-noreaper",
                "--source",
                "main.rs",
            ])
            .arg(exercise)
            .current_dir(run)
            // Nothing of the teacher's environment reaches the student's code.
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C")
            .env("TMPDIR", self.work.join("tmp"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        // SAFETY: setrlimit is a system call, async-signal-safe; it only
        // lowers this process's limits. No core dumps, no huge files, no
        // address space beyond what a server of the lab needs.
        unsafe {
            command.pre_exec(|| {
                use nix::sys::resource::{setrlimit, Resource};
                setrlimit(Resource::RLIMIT_CORE, 0, 0)?;
                setrlimit(Resource::RLIMIT_FSIZE, 256 << 20, 256 << 20)?;
                setrlimit(Resource::RLIMIT_AS, 2 << 30, 2 << 30)?;
                Ok(())
            });
        }
        let limit = self.options.check_timeout;
        let ended = processes::run(&mut command, limit);
        self.keep_log(student, &format!("check{exercise}.json"), &json);
        self.keep_log(student, &format!("check{exercise}.err"), &errors);
        let status = match ended {
            Ok(Ended::Finished(status)) => status,
            Ok(Ended::TimedOut) => {
                return (
                    false,
                    Some(format!("ex{exercise}: the checker did not finish in {} s", limit.as_secs())),
                )
            }
            Err(err) => {
                return (false, Some(format!("ex{exercise}: cannot run the checker: {}", reason(&err))))
            }
        };
        let text = fs::read_to_string(&json).unwrap_or_default();
        let result = match Json::parse(&text) {
            Ok(result) => result,
            Err(_) => {
                let said = fs::read_to_string(&errors).unwrap_or_default();
                let said = said.lines().next().unwrap_or("no output").to_string();
                return (false, Some(format!("ex{exercise}: the checker failed ({status}): {said}")));
            }
        };
        let exercise_result = result.at("exercises").at(exercise);
        let passed = exercise_result.at("passed").as_bool() == Some(true) && status.success();
        if passed {
            return (true, None);
        }
        let failed: Vec<&str> = exercise_result
            .at("checks")
            .items()
            .iter()
            .filter(|c| c.at("ok").as_bool() != Some(true))
            .map(|c| c.at("name").text())
            .collect();
        let mut note = format!("ex{exercise} failed: ");
        match failed.as_slice() {
            [] => note.push_str("no check ran"),
            names => {
                let _ = write!(note, "{}", names.join(", "));
            }
        }
        (false, Some(note))
    }

    /// Keeps a copy of `file` as LOGS/STUDENT.NAME, if logs are kept.
    fn keep_log(&self, student: &str, name: &str, file: &Path) {
        let Some(logs) = &self.options.logs else { return };
        let safe: String =
            student.chars().map(|c| if c.is_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
        if fs::create_dir_all(logs).is_ok() {
            let _ = fs::copy(file, logs.join(format!("{safe}.{name}")));
        }
    }
}

/// Writes the student's main.rs, dated a second ahead: newer than any
/// build before it, on any file system's clock, so that cargo rebuilds.
fn write_source(path: &Path, source: &[u8]) -> io::Result<()> {
    fs::write(path, source)?;
    File::options().write(true).open(path)?.set_modified(SystemTime::now() + Duration::from_secs(1))
}

fn path_str(path: &Path) -> &str {
    path.to_str().unwrap_or_default()
}

/// Copies an executable, readable and runnable by any user.
fn copy_executable(from: &Path, to: &Path) -> io::Result<()> {
    fs::copy(from, to)?;
    fs::set_permissions(to, fs::Permissions::from_mode(0o755))
}

/// Appends the file `part` to `log`, and removes `part`.
fn append(log: &Path, part: &Path) {
    if let (Ok(text), Ok(mut out)) = (fs::read(part), File::options().create(true).append(true).open(log)) {
        let _ = out.write_all(&text);
    }
    let _ = fs::remove_file(part);
}

/// The last lines of a build's output, for a message.
fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The first error of a build's output, and where: `error[E0425]: cannot
/// find value `x` in this scope (src/main.rs:12:5)`.
fn first_error(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines.iter().position(|l| l.starts_with("error")) else {
        return "see the build output".into();
    };
    let place = lines[at + 1..]
        .iter()
        .take_while(|l| !l.starts_with("error") && !l.starts_with("warning"))
        .find_map(|l| l.trim_start().strip_prefix("--> "));
    let mut error: String = lines[at].chars().take(160).collect();
    if let Some(place) = place {
        let _ = write!(error, " ({place})");
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("ana"), "ana");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        let line = Line {
            student: "ana".into(),
            build: Build::Ok,
            passed: [true, false, true],
            answers: 20,
            questions: 23,
            seconds: 12.345,
            notes: vec!["ex6 failed: sigpipe-count".into(), "x, y".into()],
        };
        assert_eq!(line.csv(), "ana,ok,1,0,1,2/3,20/23,12.3,\"ex6 failed: sigpipe-count; x, y\"");
    }
}
