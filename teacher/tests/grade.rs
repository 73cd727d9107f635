//! The grading command (teacher/grade: teacher/src/bin/grade.rs), run as
//! a teacher runs it, on folders of submissions: the reference solution
//! handed in with `make entrega`, the untouched skeleton, a cheat, a
//! submission that does not compile and one that stops the checker and
//! never returns; each gets its line of the CSV, and the run is bounded
//! and leaves nothing behind. Submissions that hold a link, or a path out
//! of their folder, are refused, and nothing of them is written outside.
//! An interrupt stops everything; usage errors are one line.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use testbed::*;

const GRADE: &str = env!("CARGO_BIN_EXE_grade");
/// The loosest bound on one grading run of a few submissions, or on one
/// `make entrega` (both build from scratch the first time).
const RUN_TIME: Duration = Duration::from_secs(600);
/// The checker's time per exercise in these runs: far more than a sound
/// submission needs, and what the one that stops the checker costs.
const CHECK_TIMEOUT: u64 = 60;

/// A target directory of this test's own, kept between runs: the checker
/// and the student crate's dependencies build once.
fn target(tag: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("grade-{tag}"))
}

/// The skeleton's main.rs, and the reference solution's.
fn skeleton() -> String {
    fs::read_to_string(repo_root().join("labs/student/src/main.rs")).unwrap()
}

fn solution(scratch: &Path) -> String {
    let dir = scratch.join("solution");
    copy_student_crate(&dir.join("labs/student"));
    apply_solution(&dir);
    let solved = fs::read_to_string(dir.join("labs/student/src/main.rs")).unwrap();
    fs::remove_dir_all(&dir).unwrap();
    solved
}

/// `text` with `old` (there once) replaced by `new`.
fn edited(text: &str, old: &str, new: &str) -> String {
    assert_eq!(text.matches(old).count(), 1, "{old:?} once");
    text.replacen(old, new, 1)
}

/// An answer sheet with the questions `numbers` answered.
fn sheet_with_answers(file: &str, label: &str, letter: char, numbers: &[u32]) -> String {
    let mut text = fs::read_to_string(repo_root().join(file)).unwrap();
    for n in numbers {
        let heading = format!("## {letter}{n}\n");
        let at = text.find(&heading).unwrap_or_else(|| panic!("{heading:?} in {file}"));
        let label_at = at + text[at..].find(label).unwrap() + label.len();
        text.insert_str(label_at, &format!("\nWhat I saw for {letter}{n}, with `ps x`."));
    }
    text
}

/// `make entrega` in a scratch copy of the repository with the solution
/// applied and the sheets partly answered: entrega-ana.tar.gz.
fn handed_in_solution(scratch: &Path) -> PathBuf {
    let top = scratch.join("ana");
    copy_student_crate(&top.join("labs/student"));
    fs::copy(repo_root().join("labs/entrega.sh"), top.join("labs/entrega.sh")).unwrap();
    apply_solution(&top);
    // P1..P20 in Spanish, Q21 in English: 21 of 22.
    let es = sheet_with_answers("RESPUESTAS.md", "Respuesta:", 'P', &(1..=20).collect::<Vec<_>>());
    fs::write(top.join("RESPUESTAS.md"), es).unwrap();
    fs::write(top.join("ANSWER_SHEET.md"), sheet_with_answers("ANSWER_SHEET.md", "Answer:", 'Q', &[21]))
        .unwrap();
    let output = run_within(
        Command::new("make")
            .args(["-s", "entrega"])
            .current_dir(top.join("labs/student"))
            .env("ENTREGA", "ana")
            .env("TARGET", target("entrega"))
            .env("LANG", "C")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES"),
        RUN_TIME,
    );
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "make entrega: {said}{}", stderr_text(&output));
    assert!(said.contains("SCORE 3/3"), "{said}");
    top.join("entrega-ana.tar.gz")
}

/// One record of the CSV (RFC 4180: quoted fields, doubled quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                fields.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(String::new()),
            (c, _) => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

/// The grader's run: its CSV, one map of fields per student.
struct Graded {
    header: String,
    lines: Vec<Vec<String>>,
    stderr: String,
}

impl Graded {
    fn line(&self, student: &str) -> &[String] {
        self.lines
            .iter()
            .find(|l| l[0] == student)
            .unwrap_or_else(|| panic!("no line for {student}: {self:?}"))
    }
}

impl std::fmt::Debug for Graded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\n{}\n", self.header)?;
        for line in &self.lines {
            writeln!(f, "{}", line.join(" | "))?;
        }
        write!(f, "{}", self.stderr)
    }
}

/// Not as root, the grader runs the students' code only when told
/// `--as-me`; as root, it runs it as `nobody`.
fn as_me() -> &'static [&'static str] {
    match nix::unistd::geteuid().is_root() {
        true => &[],
        false => &["--as-me"],
    }
}

/// Runs the grader on `folder` to its end (exit 0), with this test's
/// target directory; asserts that it leaves no process and no folder.
fn grade(folder: &Path, tag: &str) -> Graded {
    let csv = folder.with_extension("csv");
    let mut command = Command::new(GRADE);
    command
        .arg("--out")
        .arg(&csv)
        .arg("--target-dir")
        .arg(target(tag))
        .args(["--check-timeout", &CHECK_TIMEOUT.to_string()])
        .args(as_me())
        .arg(folder)
        .env("LANG", "C")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES");
    let (output, pid) = run_within_pid(&mut command, RUN_TIME);
    let stderr = stderr_text(&output);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(output.stdout.is_empty(), "the CSV went to --out");
    let text = fs::read_to_string(&csv).unwrap();
    let mut records = text.lines();
    let header = records.next().unwrap_or_default().to_string();
    let lines: Vec<Vec<String>> = records.map(csv_fields).collect();
    assert!(lines.iter().all(|l| l.len() == 9), "nine fields a line:\n{text}");
    assert_nothing_left(pid);
    Graded { header, lines, stderr }
}

/// The folder of the grader's run (named after its process) is gone, and
/// no process runs a file from it.
fn assert_nothing_left(grader: i32) {
    let prefix = format!("tcpechod-grade-{grader}-");
    let runs_of = |name: &str| name.starts_with(&prefix);
    let folders: Vec<String> = fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| runs_of(name))
        .collect();
    assert!(folders.is_empty(), "left in the temporary folder: {folders:?}");
    let left: Vec<i32> = all_processes()
        .iter()
        .filter(|p| {
            let exe = fs::read_link(format!("/proc/{}/exe", p.pid)).unwrap_or_default();
            exe.strip_prefix(std::env::temp_dir())
                .ok()
                .and_then(|rest| rest.iter().next())
                .is_some_and(|top| runs_of(&top.to_string_lossy()))
        })
        .map(|p| p.pid)
        .collect();
    assert!(left.is_empty(), "processes of the run left: {left:?}");
}

#[test]
fn five_submissions_five_lines() {
    let started = Instant::now();
    let scratch = Scratch::new("grade-five");
    let subs = scratch.dir.join("submissions");
    fs::create_dir_all(&subs).unwrap();
    let solved = solution(&scratch.dir);

    // The reference solution, as `make entrega` packs it.
    fs::rename(handed_in_solution(&scratch.dir), subs.join("entrega-ana.tar.gz")).unwrap();
    // The untouched skeleton, an unpacked entrega with the blank sheet.
    let bob = subs.join("entrega-bob");
    fs::create_dir(&bob).unwrap();
    fs::write(bob.join("main.rs"), skeleton()).unwrap();
    fs::copy(repo_root().join("RESPUESTAS.md"), bob.join("RESPUESTAS.md")).unwrap();
    // Comer's reaper (`>= 0`): the parent spins while a child is alive.
    let carla = subs.join("carla");
    fs::create_dir(&carla).unwrap();
    let spin = edited(
        &solved,
        "while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } > 0 {}",
        "while unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) } >= 0 {}",
    );
    fs::write(carla.join("main.rs"), spin).unwrap();
    fs::write(carla.join("ANSWER_SHEET.md"), sheet_with_answers("ANSWER_SHEET.md", "Answer:", 'Q', &[1, 2]))
        .unwrap();
    // A submission that does not compile.
    let dan = subs.join("dan");
    fs::create_dir(&dan).unwrap();
    fs::write(
        dan.join("main.rs"),
        edited(&skeleton(), "    let port = port_from_arguments();", "    let port = ;"),
    )
    .unwrap();
    // A SIGTERM handler that stops the process that sent it (the checker)
    // and never returns: exercise 7 would hang the checker itself, if the
    // server could signal it (only when the grader runs --as-me).
    let eva = subs.join("eva");
    fs::create_dir(&eva).unwrap();
    let hang = edited(
        &solved,
        "    STOP.store(true, Ordering::SeqCst);\n",
        "    let _ = nix::sys::signal::kill(nix::unistd::getppid(), Signal::SIGSTOP);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
",
    );
    fs::write(eva.join("main.rs"), hang).unwrap();
    fs::write(subs.join("notes.txt"), "not a submission\n").unwrap();

    let graded = grade(&subs, "five");
    eprintln!("the CSV, and what the grader said:{graded:?}");
    assert_eq!(graded.header, "student,build,ex5,ex6,ex7,score,answers,seconds,notes");
    let students: Vec<&str> = graded.lines.iter().map(|l| l[0].as_str()).collect();
    assert_eq!(students, ["ana", "bob", "carla", "dan", "eva"], "{graded:?}");
    for line in &graded.lines {
        let seconds: f64 = line[7].parse().unwrap_or_else(|_| panic!("seconds: {graded:?}"));
        assert!(seconds >= 0.0, "{graded:?}");
    }
    let fields = |student: &str| graded.line(student)[1..7].to_vec();
    let notes = |student: &str| graded.line(student)[8].clone();

    assert_eq!(fields("ana"), ["ok", "1", "1", "1", "3/3", "21/22"], "{graded:?}");
    assert_eq!(notes("ana"), "", "{graded:?}");

    assert_eq!(fields("bob"), ["ok", "0", "0", "0", "0/3", "0/22"], "{graded:?}");
    for exercise in ["ex5 failed: ", "ex6 failed: ", "ex7 failed: "] {
        assert!(notes("bob").contains(exercise), "{graded:?}");
    }

    let carla = fields("carla");
    assert_eq!((carla[0].as_str(), carla[1].as_str(), carla[5].as_str()), ("ok", "0", "2/22"), "{graded:?}");
    assert_ne!(carla[4], "3/3", "{graded:?}");
    assert!(notes("carla").contains("ex5 failed: parent-idle-while-a-child-lives"), "{graded:?}");
    assert!(!notes("carla").contains("no answer sheet"), "{graded:?}");

    assert_eq!(fields("dan"), ["failed", "0", "0", "0", "0/3", "0/22"], "{graded:?}");
    assert!(notes("dan").contains("does not compile: error"), "{graded:?}");
    assert!(notes("dan").contains("src/main.rs:"), "where: {graded:?}");
    assert!(notes("dan").contains("no answer sheet"), "{graded:?}");

    assert_eq!(fields("eva"), ["ok", "1", "1", "0", "2/3", "0/22"], "{graded:?}");
    let eva_seconds: f64 = graded.line("eva")[7].parse().unwrap();
    let bound = format!("ex7: the checker did not finish in {CHECK_TIMEOUT} s");
    if as_me().is_empty() {
        // As root the server runs as nobody: its SIGSTOP cannot reach the
        // checker, which fails exercise 7 by itself, before the bound.
        assert!(notes("eva").contains("ex7 failed: "), "{graded:?}");
        assert!(!notes("eva").contains(&bound), "{graded:?}");
        assert!(eva_seconds < CHECK_TIMEOUT as f64, "{graded:?}");
    } else {
        // The checker was stopped: only the grader's bound ended exercise 7.
        assert!(notes("eva").contains(&bound), "{graded:?}");
        assert!(eva_seconds >= CHECK_TIMEOUT as f64, "{graded:?}");
    }

    assert!(graded.stderr.contains("skipping notes.txt: not a submission"), "{graded:?}");
    assert!(graded.stderr.contains("[5/5] eva: builds, score 2/3"), "{graded:?}");
    assert!(started.elapsed() < RUN_TIME, "the whole test took {:?}", started.elapsed());
}

/// A ustar entry: its header, its data, its padding.
fn tar_entry(tar: &mut Vec<u8>, name: &str, kind: u8, data: &[u8], link: &str) {
    let mut header = [0u8; 512];
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}\0", width = field.len() - 1);
        field.copy_from_slice(text.as_bytes());
    };
    header[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut header[100..108], 0o644);
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], data.len() as u64);
    octal(&mut header[136..148], 1_700_000_000);
    header[156] = kind;
    header[157..157 + link.len()].copy_from_slice(link.as_bytes());
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].fill(b' ');
    let sum: u64 = header.iter().map(|&b| u64::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    tar.extend_from_slice(&header);
    tar.extend_from_slice(data);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
}

/// A .tar.gz of `entries` (name, type, data, link target), compressed by
/// gzip; GNU tar must read it back as it was meant.
fn tarball(path: &Path, entries: &[(&str, u8, &[u8], &str)], listed: &str) {
    let mut tar = Vec::new();
    for (name, kind, data, link) in entries {
        tar_entry(&mut tar, name, *kind, data, link);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut gzip =
        Command::new("gzip").arg("-c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let mut input = gzip.stdin.take().unwrap();
    let writer = thread::spawn(move || input.write_all(&tar));
    let output = gzip.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    fs::write(path, output.stdout).unwrap();
    let listing = Command::new("tar").arg("-tvzf").arg(path).output().unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(listing.contains(listed), "tar -tvzf {}:\n{listing}", path.display());
}

#[test]
fn a_submission_with_a_link_or_a_path_out_of_its_folder_is_refused_alone() {
    let scratch = Scratch::new("grade-refused");
    let subs = scratch.dir.join("submissions");
    fs::create_dir_all(&subs).unwrap();
    let main = skeleton();
    let outside = std::env::temp_dir().join(format!("oscar-was-here-{}", std::process::id()));
    let outside_name = outside.file_name().unwrap().to_string_lossy().into_owned();
    let climb = format!("entrega-oscar/../../{outside_name}");
    let absolute = outside.with_extension("abs");
    let absolute_name = absolute.to_string_lossy().into_owned();
    tarball(
        &subs.join("entrega-mallory.tar.gz"),
        &[("entrega-mallory/", b'5', b"", ""), ("entrega-mallory/main.rs", b'2', b"", "/etc/passwd")],
        "entrega-mallory/main.rs -> /etc/passwd",
    );
    tarball(
        &subs.join("entrega-oscar.tar.gz"),
        &[("entrega-oscar/main.rs", b'0', main.as_bytes(), ""), (&climb, b'0', b"pwned\n", "")],
        &climb,
    );
    tarball(
        &subs.join("entrega-trent.tar.gz"),
        &[("entrega-trent/main.rs", b'0', main.as_bytes(), ""), (&absolute_name, b'0', b"pwned\n", "")],
        &absolute_name,
    );
    tarball(
        &subs.join("entrega-victor.tar.gz"),
        &[
            ("entrega-victor/RESPUESTAS.md", b'0', b"## P1\n", ""),
            ("entrega-victor/main.rs", b'1', b"", "etc/shadow"),
        ],
        "entrega-victor/main.rs link to etc/shadow",
    );
    let peggy = subs.join("peggy");
    fs::create_dir(&peggy).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", peggy.join("main.rs")).unwrap();
    // Beside them, a student's repository as GitHub Classroom's download
    // leaves it: graded as any other.
    let zoe = subs.join("tcpechod-lab-zoe");
    fs::create_dir_all(zoe.join(".git")).unwrap();
    fs::create_dir_all(zoe.join("labs/student/src")).unwrap();
    fs::write(zoe.join("labs/student/src/main.rs"), solution(&scratch.dir)).unwrap();
    fs::write(zoe.join("RESPUESTAS.md"), sheet_with_answers("RESPUESTAS.md", "Respuesta:", 'P', &[1]))
        .unwrap();
    fs::copy(repo_root().join("README.md"), zoe.join("README.md")).unwrap();

    let graded = grade(&subs, "refused");
    eprintln!("{graded:?}");
    let students: Vec<&str> = graded.lines.iter().map(|l| l[0].as_str()).collect();
    assert_eq!(students, ["mallory", "oscar", "peggy", "tcpechod-lab-zoe", "trent", "victor"], "{graded:?}");
    for (student, why) in [
        ("mallory", "refused: a symbolic link in the tarball: entrega-mallory/main.rs"),
        ("oscar", "refused: a path that leaves its folder in the tarball: entrega-oscar/../../"),
        ("peggy", "refused: main.rs is a symbolic link, not followed"),
        ("trent", "refused: an absolute path in the tarball: /"),
        ("victor", "refused: a hard link in the tarball: entrega-victor/main.rs"),
    ] {
        let line = graded.line(student);
        assert_eq!(line[1..7], ["refused", "0", "0", "0", "0/3", "0/22"], "{student}: {graded:?}");
        assert!(line[8].starts_with(why), "{student}: {graded:?}");
    }
    assert!(!outside.exists() && !absolute.exists(), "a file was written outside its folder");
    let zoe = graded.line("tcpechod-lab-zoe");
    assert_eq!(
        (&zoe[1..7], zoe[8].as_str()),
        (&["ok", "1", "1", "1", "3/3", "1/22"].map(String::from)[..], "")
    );
}

#[test]
fn an_interrupt_stops_the_checker_the_servers_and_the_run() {
    let scratch = Scratch::new("grade-interrupt");
    let subs = scratch.dir.join("submissions");
    let eva = subs.join("eva");
    fs::create_dir_all(&eva).unwrap();
    // A server that never ends on SIGTERM, and stops its checker (when it
    // can signal it: --as-me).
    let hang = edited(
        &solution(&scratch.dir),
        "    STOP.store(true, Ordering::SeqCst);\n",
        "    let _ = nix::sys::signal::kill(nix::unistd::getppid(), Signal::SIGSTOP);
    loop {
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
",
    );
    fs::write(eva.join("main.rs"), hang).unwrap();
    let csv = scratch.dir.join("grades.csv");
    let log = scratch.dir.join("stderr.txt");
    let mut grader = ProcessGroup::spawn(
        Command::new(GRADE)
            .arg("--out")
            .arg(&csv)
            .arg("--target-dir")
            .arg(target("interrupt"))
            .args(["--check-timeout", "3600"])
            .args(as_me())
            .arg(&subs)
            .env("LANG", "C")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap()),
    );
    let pid = grader.pid();
    // The run's folder: tcpechod-grade-PID-XXXXXX (mkdtemp).
    let prefix = format!("tcpechod-grade-{pid}-");
    let work = wait_until_within("the run's folder", RUN_TIME, || {
        fs::read_dir(std::env::temp_dir())
            .ok()?
            .filter_map(|entry| entry.ok())
            .find(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
            .map(|entry| entry.path())
    });
    let checker = work.join("bin/check");
    // Once the builds are done (they may take minutes the first time), the
    // checker runs, and with it the student's server.
    let runs = |path: &Path| {
        all_processes().iter().any(|p| fs::read_link(format!("/proc/{}/exe", p.pid)).is_ok_and(|e| e == path))
    };
    wait_until_within("the checker and the student's server to run", RUN_TIME, || {
        assert!(grader.try_wait().is_none(), "{}", fs::read_to_string(&log).unwrap());
        (runs(&checker) && runs(&work.join("run/TCPechod"))).then_some(())
    });
    signal(pid, libc::SIGINT);
    let status = wait_until("the grader to stop", || grader.try_wait());
    let said = fs::read_to_string(&log).unwrap();
    assert_eq!(status.code(), Some(130), "{said}");
    assert_eq!(
        said.lines().last(),
        Some("grade: interrupted (SIGINT): the CSV holds the submissions graded so far"),
        "{said}"
    );
    assert_eq!(fs::read_to_string(&csv).unwrap(), "student,build,ex5,ex6,ex7,score,answers,seconds,notes\n");
    assert_nothing_left(pid);
}

#[test]
fn usage_errors_and_a_missing_folder_are_one_line() {
    for (args, code, words) in [
        (&[][..], 2, &["FOLDER", "(see --help)"][..]),
        (&["--check-timeout", "0", "x"], 2, &["--check-timeout", "expected a whole number from 1"]),
        (&["--bogus", "x"], 2, &["--bogus"]),
        (&["/nonexistent/submissions"], 1, &["/nonexistent/submissions is not a folder"]),
    ] {
        let output = run_bounded(Command::new(GRADE).args(args).env("LANG", "C").env_remove("LC_ALL"), b"");
        assert_one_line_error(&output, code, "grade", words);
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    let output = run_bounded(
        Command::new(GRADE).arg("/nonexistent").env("LANG", "es_ES.UTF-8").env_remove("LC_ALL"),
        b"",
    );
    assert_one_line_error(&output, 1, "grade", &["/nonexistent no es una carpeta"]);
    let output = run_bounded(Command::new(GRADE).arg("--help"), b"");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("Usage: grade [OPTIONS] <FOLDER>"));
}

#[test]
fn the_wrapper_builds_and_runs_the_grader() {
    // In a target directory of its own: the wrapper's build must not
    // replace the binary the other tests run.
    let wrapper = repo_root().join("teacher/grade");
    let output =
        run_within(Command::new(&wrapper).arg("--help").env("CARGO_TARGET_DIR", target("wrapper")), RUN_TIME);
    assert!(output.status.success(), "{}", stderr_text(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Usage: grade [OPTIONS] <FOLDER>"));
    let output = run_within(
        Command::new(&wrapper)
            .arg("/nonexistent")
            .env("CARGO_TARGET_DIR", target("wrapper"))
            .env("LANG", "C"),
        RUN_TIME,
    );
    assert_one_line_error(&output, 1, "grade", &["/nonexistent is not a folder"]);
}
