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
//!    costs only that exercise of that student. A checker that did not
//!    end by itself (killed, stopped, interrupted) is not believed.
//!
//! Everything a run writes is in a private folder of its own (mkdtemp,
//! mode 0700), removed at its end; each submission's checker gets a fresh
//! TMPDIR in it. Every process a submission starts is stopped before the
//! next one (`processes`).
//!
//! The grader runs as root: then the students' code (rustc on their
//! source, their servers) runs as an unprivileged user (`nobody` unless
//! told otherwise), in namespaces of its own (`isolation`), with limits.
//! The builds take the dependencies from a copy of their sources
//! (`cargo vendor`), the toolchain from where the teacher's is; their
//! folder is that user's, behind a folder of root's that is closed while
//! the servers run, so that a server cannot tamper with the next build.
//! Not as root, it refuses to run unless told `--as-me`: then the
//! students' code runs with the teacher's own rights.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use tcpechod::support::log::reason;

use crate::answers::SHEETS;
use crate::isolation::{self, Jail, Limits};
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
/// What a build may take: rustc's memory and file sizes (its CPU time is
/// the build's time).
const BUILD_MEMORY: u64 = 4 << 30;
const BUILD_FILES: u64 = 1 << 30;
/// What the checker and the servers it starts may take.
const CHECK_MEMORY: u64 = 2 << 30;
const CHECK_FILES: u64 = 256 << 20;

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
    /// The user that builds and runs the students' code, when run as root.
    pub user: String,
    /// Run the students' code as the grader's own user (not root).
    pub as_me: bool,
    /// Where to keep each submission's build output and checker results.
    pub logs: Option<PathBuf>,
    /// Where cargo builds the checker (and, with `as_me`, the
    /// submissions); a folder of the run, removed at its end, if none.
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

/// As root, one grading run at a time for a user: after each submission
/// a run removes the processes and the files that user made since it
/// began, which would include another run's. A second run waits here,
/// and says so.
fn lock_user(uid: u32, spanish: bool) -> Result<nix::fcntl::Flock<File>, Fatal> {
    use nix::fcntl::{Flock, FlockArg};
    use std::os::unix::fs::OpenOptionsExt;
    let folder =
        ["/run/lock", "/run"].into_iter().map(Path::new).find(|p| p.is_dir()).unwrap_or(Path::new("/tmp"));
    let path = folder.join(format!("tcpechod-grade-{uid}.lock"));
    let cannot = |why: String| {
        fatal(
            format!("no se puede abrir {}: {why}", path.display()),
            format!("cannot open {}: {why}", path.display()),
        )
    };
    let open = || {
        fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
    };
    let file = open().map_err(|err| cannot(reason(&err)))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(locked),
        Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
            let _ = writeln!(
                io::stderr(),
                "grade: {}",
                match spanish {
                    true => "otra corrección usa el mismo usuario (--user); esperando a que termine",
                    false => "another grading run uses the same user (--user); waiting for it to end",
                }
            );
            Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| cannot(errno.desc().into()))
        }
        Err((_, errno)) => Err(cannot(errno.desc().into())),
    }
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
    // Written as text, never read as a formula by a spreadsheet (which
    // also skips a leading tab or carriage return to find one).
    let text = match text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
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

/// Set by the grader's signal thread before it stops everything: the
/// submission being graded then is not written (its checker was stopped by
/// the interrupt, not failed by the student's code), and the run never
/// ends as if it had finished.
pub static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Waits for the signal thread to end the process, if it is under way.
fn unless_interrupted() {
    while INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::park();
    }
}

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
    let grader = Grader::new(options);
    let result = grader.and_then(|grader| grader.grade_all());
    clean_up();
    result
}

/// How the students' crate is built: by whom, with which cargo, where.
struct StudentBuild {
    /// The cargo that builds it (the toolchain's own, as root).
    cargo: PathBuf,
    /// Its whole environment, as root (None: the grader's own).
    env: Option<Vec<(String, PathBuf)>>,
    /// Arguments for every build (the vendored sources, as root).
    args: Vec<String>,
    target: PathBuf,
    /// As root: the folder of root's, closed to the user while the
    /// servers run, around the user's build folder.
    gate: Option<PathBuf>,
    /// Where the build runs.
    home: PathBuf,
}

/// What a run needs: the teacher's tree, the folder of the run, the
/// checker, and where the student's code is built and run.
struct Grader<'a> {
    options: &'a Options,
    /// The top of the teacher's tree (this crate's parent).
    root: PathBuf,
    work: PathBuf,
    /// The folder only the grader enters: logs, unpacked submissions,
    /// each checker's TMPDIR.
    private: PathBuf,
    /// Where the checker is built.
    target: PathBuf,
    checker: PathBuf,
    /// The copy of the student's crate that builds each submission.
    crate_dir: PathBuf,
    /// Where the checker runs: the two binaries and main.rs.
    run_dir: PathBuf,
    /// As root: the user, the namespaces.
    jail: Option<Jail>,
    build: StudentBuild,
    /// The questions of the answer sheet, by number.
    questions: BTreeSet<u32>,
    cargo: String,
    /// As root: the lock that keeps one run at a time for the user
    /// (held while this value lives).
    _user_lock: Option<nix::fcntl::Flock<File>>,
}

/// Makes `dir` (and its parents) with `mode`.
fn make_dir(dir: &Path, mode: u32) -> Result<(), Fatal> {
    let cannot = |err: io::Error| {
        fatal(
            format!("no se puede crear {}: {}", dir.display(), reason(&err)),
            format!("cannot create {}: {}", dir.display(), reason(&err)),
        )
    };
    fs::create_dir_all(dir).map_err(cannot)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).map_err(cannot)
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
        let jail = match options.as_me {
            true => None,
            false => Some(Self::jail_for(&options.user)?),
        };
        let user_lock = match &jail {
            Some(jail) => Some(lock_user(jail.uid, options.spanish)?),
            None => None,
        };
        // A folder nobody else can guess, made here and nowhere else.
        let template = std::env::temp_dir().join(format!("tcpechod-grade-{}-XXXXXX", std::process::id()));
        let work = nix::unistd::mkdtemp(&template).map_err(|errno| {
            fatal(
                format!("no se puede crear {}: {}", template.display(), errno.desc()),
                format!("cannot create {}: {}", template.display(), errno.desc()),
            )
        })?;
        *WORK.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(work.clone());
        // As root, the user crosses it (to build, to run) without seeing
        // what it holds.
        make_dir(&work, if jail.is_some() { 0o711 } else { 0o700 })?;
        let private = work.join("private");
        make_dir(&private, 0o700)?;
        for dir in ["crate/src", "run"] {
            make_dir(&work.join(dir), 0o755)?;
        }
        make_dir(&work.join("bin"), 0o700)?;
        let target = options.target_dir.clone().unwrap_or_else(|| work.join("target"));
        fs::create_dir_all(&target).map_err(|err| {
            fatal(
                format!("no se puede crear {}: {}", target.display(), reason(&err)),
                format!("cannot create {}: {}", target.display(), reason(&err)),
            )
        })?;
        let target = target.canonicalize().unwrap_or(target);
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let build = StudentBuild {
            cargo: PathBuf::from(&cargo),
            env: None,
            args: Vec::new(),
            target: target.join("student"),
            gate: None,
            home: work.join("crate"),
        };
        let mut grader = Grader {
            options,
            checker: work.join("bin/check"),
            crate_dir: work.join("crate"),
            run_dir: work.join("run"),
            root,
            private,
            work,
            target,
            jail,
            build,
            questions,
            cargo,
            _user_lock: user_lock,
        };
        if grader.jail.is_some() {
            grader.build = grader.confined_build()?;
        }
        Ok(grader)
    }

    /// The user the students' code runs as, when the grader is root.
    fn jail_for(user: &str) -> Result<Jail, Fatal> {
        match nix::unistd::User::from_name(user) {
            Ok(Some(u)) if !u.uid.is_root() => Ok(Jail::new(u.uid.as_raw(), u.gid.as_raw())),
            Ok(Some(_)) => Err(fatal(
                format!("--user {user}: debe ser un usuario sin privilegios, no root"),
                format!("--user {user}: it must be an unprivileged user, not root"),
            )),
            _ => Err(fatal(
                format!("como root, el código de los estudiantes se ejecuta como un usuario sin privilegios, y no existe el usuario «{user}»: elige otro con --user"),
                format!("as root, the students' code runs as an unprivileged user, and there is no user '{user}': choose one with --user"),
            )),
        }
    }

    /// As root: the students' builds run as the user, with the toolchain
    /// the teacher's `rustc` names, the dependencies vendored in the
    /// folder of the run, in a folder of the user's behind a gate of
    /// root's; the teacher's tree hidden from them, or refused if that
    /// cannot be done and the user can read it.
    fn confined_build(&mut self) -> Result<StudentBuild, Fatal> {
        let sysroot = self.sysroot()?;
        let jail = self.jail.as_mut().ok_or_else(|| fatal("", ""))?;
        let (uid, gid) = (jail.uid, jail.gid);
        let user = &self.options.user;
        let tools = match &jail.namespaces {
            Ok(()) => {
                let tools = self.work.join("toolchain");
                make_dir(&tools, 0o755)?;
                jail.bind_toolchain(&sysroot, &tools);
                let keys = self.root.join("teacher");
                let tree = if self.work.starts_with(&self.root) { keys } else { self.root.clone() };
                let mut hidden = vec![tree, self.options.folder.clone()];
                hidden.extend(self.options.logs.clone());
                for folder in hidden.iter().filter_map(|f| f.canonicalize().ok()) {
                    if folder.is_dir() && !self.work.starts_with(&folder) {
                        jail.hide(&folder);
                    }
                }
                tools
            }
            Err(why) => {
                let _ = writeln!(
                    io::stderr(),
                    "grade: {}",
                    if self.options.spanish {
                        format!("aviso: aquí no se pueden crear espacios de nombres ({why}): el código de los estudiantes, como {user}, comparte la red de esta máquina y ve sus ficheros como {user} los ve")
                    } else {
                        format!("warning: no namespaces here ({why}): the students' code, as {user}, shares this machine's network and sees its files as {user} does")
                    }
                );
                let teacher = self.root.join("teacher");
                let keys = ["SOLUCIONES.md", "ANSWER_KEY.md", "solution.patch"];
                if keys.iter().any(|key| {
                    jail.user_can(Path::new("test"), &[OsStr::new("-r"), teacher.join(key).as_os_str()])
                }) {
                    let teacher = teacher.display();
                    return Err(fatal(
                        format!("{user} puede leer {teacher}, y su código (el de los estudiantes) también: ciérralo a los demás (chmod o-rwx {teacher}) y vuelve a ejecutarlo"),
                        format!("{user} can read {teacher}, and so can the students' code run as {user}: close it to others (chmod o-rwx {teacher}) and run it again"),
                    ));
                }
                if !jail.user_can(&sysroot.join("bin/cargo"), &[OsStr::new("--version")]) {
                    let sysroot = sysroot.display();
                    return Err(fatal(
                        format!("{user} no puede ejecutar Rust ({sysroot}): una carpeta del camino está cerrada a los demás; instálalo donde cualquier usuario lo pueda ejecutar (por ejemplo en /usr/local) o abre el camino (chmod o+x)"),
                        format!("{user} cannot run Rust ({sysroot}): a folder on the way is closed to others; install it where any user can run it (for example in /usr/local) or open the way (chmod o+x)"),
                    ));
                }
                sysroot
            }
        };
        let vendor = self.work.join("vendor");
        self.vendor(&vendor)?;
        let gate = self.work.join("gate");
        make_dir(&gate, 0o700)?;
        let home = gate.join("build");
        for dir in ["", "home", "tmp", "target"] {
            let dir = home.join(dir);
            make_dir(&dir, 0o700)?;
            nix::unistd::chown(&dir, Some(uid.into()), Some(gid.into())).map_err(|errno| {
                fatal(
                    format!("no se puede dar {} a {user}: {}", dir.display(), errno.desc()),
                    format!("cannot give {} to {user}: {}", dir.display(), errno.desc()),
                )
            })?;
        }
        let path = format!("{}:/usr/local/bin:/usr/bin:/bin", tools.join("bin").display());
        let env = vec![
            ("PATH".to_string(), PathBuf::from(path)),
            ("HOME".into(), home.join("home")),
            ("CARGO_HOME".into(), home.join("home")),
            ("RUSTC".into(), tools.join("bin/rustc")),
            ("TMPDIR".into(), home.join("tmp")),
            ("LANG".into(), PathBuf::from("C")),
        ];
        let args = vec![
            "--offline".to_string(),
            "--config".into(),
            "source.crates-io.replace-with=\"vendored\"".into(),
            "--config".into(),
            format!("source.vendored.directory=\"{}\"", vendor.display()),
        ];
        Ok(StudentBuild {
            cargo: tools.join("bin/cargo"),
            env: Some(env),
            args,
            target: home.join("target"),
            gate: Some(gate),
            home,
        })
    }

    /// The toolchain the teacher's `rustc` runs from (rustup's proxy
    /// chooses it as for this tree).
    fn sysroot(&self) -> Result<PathBuf, Fatal> {
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        let output = Command::new(&rustc).args(["--print", "sysroot"]).current_dir(&self.root).output();
        let sysroot = match output {
            Ok(output) if output.status.success() => {
                PathBuf::from(String::from_utf8_lossy(&output.stdout).trim().to_string())
            }
            Ok(output) => {
                let said =
                    String::from_utf8_lossy(&output.stderr).lines().next().unwrap_or_default().to_string();
                return Err(fatal(
                    format!("{rustc} --print sysroot: {said}"),
                    format!("{rustc} --print sysroot: {said}"),
                ));
            }
            Err(err) => {
                return Err(fatal(
                    format!("no se puede ejecutar {rustc}: {}", reason(&err)),
                    format!("cannot run {rustc}: {}", reason(&err)),
                ))
            }
        };
        if !sysroot.join("bin/cargo").is_file() {
            let sysroot = sysroot.display();
            return Err(fatal(
                format!("no hay cargo junto a rustc, en {sysroot}/bin"),
                format!("there is no cargo beside rustc, in {sysroot}/bin"),
            ));
        }
        Ok(sysroot)
    }

    /// The sources of the student crate's dependencies, copied into
    /// `vendor` (readable by all): the user builds from them, offline.
    fn vendor(&self, vendor: &Path) -> Result<(), Fatal> {
        self.copy_untouched()?;
        let log = self.private.join("vendor.txt");
        let manifest = self.crate_dir.join("Cargo.toml");
        let mut vendored = false;
        // Offline first: what the teacher's builds fetched is enough.
        for offline in [true, false] {
            let mut args = vec!["vendor", "--locked", "--manifest-path", path_str(&manifest)];
            if offline {
                args.push("--offline");
            }
            args.push(path_str(vendor));
            if self.finished_ok(self.cargo(&args, &log, FIRST_BUILD_TIME)) {
                vendored = true;
                break;
            }
        }
        if !vendored {
            return Err(fatal(
                format!(
                    "no se pueden copiar las dependencias del crate del estudiante (cargo vendor):\n{}",
                    tail(&log)
                ),
                format!("cannot copy the student crate's dependencies (cargo vendor):\n{}", tail(&log)),
            ));
        }
        open_to_all(vendor).map_err(|err| {
            fatal(
                format!("no se puede abrir {} a todos: {}", vendor.display(), reason(&err)),
                format!("cannot open {} to all: {}", vendor.display(), reason(&err)),
            )
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
            let line = self.grade(n, submission);
            unless_interrupted();
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

    /// Runs the teacher's cargo with `args` (stdout and stderr into
    /// `log`) within `limit`.
    fn cargo(&self, args: &[&str], log: &Path, limit: Duration) -> io::Result<Ended> {
        let output = File::create(log)?;
        let mut command = Command::new(&self.cargo);
        command.args(args).stdin(Stdio::null()).stdout(output.try_clone()?).stderr(output);
        processes::run(&mut command, limit)
    }

    /// The checker of this tree, built once (as the teacher), into bin/check.
    fn build_checker(&self) -> Result<(), Fatal> {
        let manifest = self.root.join("labs/checker/Cargo.toml");
        let target = self.target.join("checker");
        let log = self.private.join("checker-build.txt");
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

    /// Copies the untouched student crate into the folder of the run
    /// (readable by all): only its main.rs changes, for each submission.
    fn copy_untouched(&self) -> Result<(), Fatal> {
        let from = self.root.join("labs/student");
        let copied = ["Cargo.toml", "Cargo.lock", "src/main.rs"].iter().try_for_each(|file| {
            let to = self.crate_dir.join(file);
            fs::copy(from.join(file), &to)?;
            fs::set_permissions(&to, fs::Permissions::from_mode(0o644))
        });
        copied.map_err(|err| {
            fatal(
                format!("no se puede copiar labs/student: {}", reason(&err)),
                format!("cannot copy labs/student: {}", reason(&err)),
            )
        })
    }

    /// The untouched student crate, built once: its dependencies are
    /// built (and, not as root, fetched) for every submission.
    fn build_untouched(&self) -> Result<(), Fatal> {
        self.copy_untouched()?;
        let log = self.private.join("student-build.txt");
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
    /// `limit` for both, and puts both binaries in the run's folder;
    /// offline after the first build. How it went, and whether it was the
    /// version without the reaper that did not build.
    fn build_both(&self, log: &Path, limit: Duration, offline: bool) -> (Build, bool) {
        let build = &self.build;
        // A binary of the last submission must never pass for this one's.
        for binary in ["TCPechod", "TCPechod-noreaper"] {
            let _ = fs::remove_file(self.run_dir.join(binary));
        }
        // Open to the user while it builds; closed again whatever happens.
        struct Gate<'g>(Option<&'g Path>);
        impl Drop for Gate<'_> {
            fn drop(&mut self) {
                if let Some(gate) = self.0 {
                    let _ = fs::set_permissions(gate, fs::Permissions::from_mode(0o700));
                }
            }
        }
        let gate = Gate(build.gate.as_deref());
        if let Some(gate) = gate.0 {
            if let Err(err) = fs::set_permissions(gate, fs::Permissions::from_mode(0o711)) {
                let _ = fs::write(log, format!("error: cannot open {}: {}\n", gate.display(), reason(&err)));
                return (Build::Failed, false);
            }
        }
        let manifest = self.crate_dir.join("Cargo.toml");
        let deadline = Instant::now() + limit;
        for (noreaper, variant, extra) in
            [(false, "TCPechod", None), (true, "TCPechod-noreaper", Some("--no-default-features"))]
        {
            let built = build.target.join("release/TCPechod");
            let _ = fs::remove_file(&built);
            let mut args = vec!["build", "--release", "--locked", "--manifest-path", path_str(&manifest)];
            args.extend(["--target-dir", path_str(&build.target)]);
            args.extend(extra);
            if offline && build.env.is_none() {
                args.push("--offline");
            }
            args.extend(build.args.iter().map(String::as_str));
            let part = log.with_extension(format!("{variant}.txt"));
            let left = deadline.saturating_duration_since(Instant::now());
            let ended = self.student_cargo(&args, &part, left);
            append(log, &part);
            match ended {
                Ok(Ended::Finished(status)) if status.success() => {}
                Ok(Ended::TimedOut) => return (Build::Timeout, noreaper),
                _ => return (Build::Failed, noreaper),
            }
            // A regular file, made by this build (no link is followed).
            let made = fs::symlink_metadata(&built).is_ok_and(|m| m.is_file());
            if !made || copy_executable(&built, &self.run_dir.join(variant)).is_err() {
                return (Build::Failed, noreaper);
            }
        }
        (Build::Ok, false)
    }

    /// Runs cargo on the student's crate: as the user, in the jail, as
    /// root; as the grader, not.
    fn student_cargo(&self, args: &[&str], log: &Path, limit: Duration) -> io::Result<Ended> {
        let output = File::create(log)?;
        let build = &self.build;
        let mut command = Command::new(&build.cargo);
        command
            .args(args)
            .current_dir(&build.home)
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output);
        let limits = Limits { memory: BUILD_MEMORY, cpu: limit.as_secs().max(1), file: BUILD_FILES };
        if let Some(env) = &build.env {
            command.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        }
        match &self.jail {
            Some(jail) => jail.confine(&mut command, limits, true),
            None => isolation::limit(&mut command, limits),
        }
        processes::run(&mut command, limit)
    }

    /// Grades the `n`th submission: its line of the CSV. What it leaves
    /// (processes, files of the user, its TMPDIR) is gone after.
    fn grade(&self, n: usize, submission: &Submission) -> Line {
        let before = self.jail.as_ref().map(Jail::snapshot);
        let line = self.grade_one(n, submission);
        processes::stop_descendants();
        if let (Some(jail), Some(before)) = (&self.jail, &before) {
            jail.clean(before);
        }
        line
    }

    fn grade_one(&self, n: usize, submission: &Submission) -> Line {
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
        let scratch = self.private.join("unpacked");
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

        let build_log = self.private.join("build.txt");
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
            Build::Ok => self.check(n, &files.main_rs, &mut line),
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

    /// Runs the checker on each exercise of a built submission, with a
    /// TMPDIR of the submission's own, removed after.
    fn check(&self, n: usize, main_rs: &[u8], line: &mut Line) {
        let source = self.run_dir.join("main.rs");
        let ready = fs::write(&source, main_rs)
            .and_then(|()| fs::set_permissions(&source, fs::Permissions::from_mode(0o644)));
        if let Err(err) = ready {
            line.notes.push(format!("cannot prepare the run: {}", reason(&err)));
            return;
        }
        let tmp = self.private.join(format!("tmp-{n}"));
        if let Err(err) = make_dir(&tmp, 0o700) {
            line.notes.push(format!("cannot prepare the run: {}", err.en));
            return;
        }
        for (i, exercise) in EXERCISES.iter().enumerate() {
            let (passed, note) = self.check_one(exercise, &line.student, &tmp);
            line.passed[i] = passed;
            line.notes.extend(note);
        }
        let _ = fs::remove_dir_all(&tmp);
    }

    /// One exercise: whether it passed, and why not.
    fn check_one(&self, exercise: &str, student: &str, tmp: &Path) -> (bool, Option<String>) {
        let (json, errors) = (self.private.join("check.json"), self.private.join("check.err"));
        let files = File::create(&json).and_then(|out| Ok((out, File::create(&errors)?)));
        let Ok((out, err)) = files else {
            return (false, Some(format!("ex{exercise}: cannot run the checker")));
        };
        let mut command = Command::new(&self.checker);
        command.args([
            "--json",
            "--server",
            "./TCPechod",
            "--noreaper",
            "./TCPechod-noreaper",
            "--source",
            "main.rs",
        ]);
        if let Some(jail) = &self.jail {
            command.args(["--run-as", &format!("{}:{}", jail.uid, jail.gid)]);
        }
        command
            .arg(exercise)
            .current_dir(&self.run_dir)
            // Nothing of the teacher's environment reaches the student's code.
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("LANG", "C")
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let limit = self.options.check_timeout;
        let limits = Limits { memory: CHECK_MEMORY, cpu: limit.as_secs().max(1), file: CHECK_FILES };
        match &self.jail {
            // The checker as root, in the namespaces; it starts the
            // servers as the user.
            Some(jail) => jail.confine(&mut command, limits, false),
            None => isolation::limit(&mut command, limits),
        }
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
        // Only a checker that ended by itself (0: passed, 1: failed) is
        // believed: one killed or interrupted by what it checks says
        // nothing, whatever it printed.
        if !matches!(status.code(), Some(0 | 1)) {
            let said = fs::read_to_string(&errors).unwrap_or_default();
            let said = said.lines().next().map(|l| format!(": {l}")).unwrap_or_default();
            return (
                false,
                Some(format!("ex{exercise}: the checker did not end by itself ({status}){said}")),
            );
        }
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

/// Opens a tree to all users, for reading: folders 0755, files 0644.
fn open_to_all(top: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(top)?;
    if meta.is_dir() {
        fs::set_permissions(top, fs::Permissions::from_mode(0o755))?;
        for entry in fs::read_dir(top)? {
            open_to_all(&entry?.path())?;
        }
    } else if meta.is_file() {
        fs::set_permissions(top, fs::Permissions::from_mode(0o644))?;
    }
    Ok(())
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
