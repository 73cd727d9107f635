//! `make handout` (teacher/handout.sh): what a teacher gives students.
//!
//! Each test makes a handout in a scratch folder of its own and looks at it
//! as a student gets it: the lab's files and none of the teacher's, no line
//! of the answer keys or of the reference solution, the statement's two
//! commands at the top of both READMEs, a workspace without the teacher
//! crate that builds offline, a tarball with the same files, a git
//! repository of one commit. The maker refuses a handout that would give
//! a key or the solution away, and a handout knows that it is one.
//!
//! The keys and the solution are looked for where they are now and where
//! they were (teacher/ or labs/): every one found is checked.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use testbed::run_within;

/// Making a handout, and every git, tar or cargo metadata command.
const QUICK: Duration = Duration::from_secs(120);
/// Building the handout from nothing.
const BUILD: Duration = Duration::from_secs(15 * 60);

/// The handout's name when none is given.
const NAME: &str = "tcpechod-lab";

/// The answer keys, where they may be.
const KEYS: [&str; 4] =
    ["teacher/SOLUCIONES.md", "teacher/ANSWER_KEY.md", "labs/SOLUCIONES.md", "labs/ANSWERS.md"];
/// The reference solution, where it may be.
const SOLUTIONS: [&str; 2] = ["teacher/solution.patch", "labs/student-solution.patch"];
/// What the keys quote as what students will see (with every labs/*.sh and
/// labs/recorded/ file): a key line found in one of them gives nothing away.
const SHOWN: [&str; 4] = ["README.md", "README_EN.md", "PARA_SABER_MAS.md", "GOING_FURTHER.md"];

/// The teacher's tree that handouts are made from.
/// Where the handout holds GitHub Classroom's autograding file (from
/// teacher/classroom.yml).
const CLASSROOM: &str = ".github/workflows/classroom.yml";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("teacher/ lies in the repository").to_path_buf()
}

/// A folder of the test's own, removed when the test lets go of it (also
/// when it fails), with whatever was built in it.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let count = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("handout-{test}-{}-{count}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        Scratch(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `command` to its end, for at most `limit` (see
/// `testbed::run_within`), and returns what it printed. No input; make's
/// job server and variables of an enclosing make are not passed on.
fn run(command: &mut Command, limit: Duration) -> Output {
    for name in ["MAKEFLAGS", "MFLAGS", "MAKELEVEL", "CARGO_MAKEFLAGS"] {
        command.env_remove(name);
    }
    run_within(command, limit)
}

/// What a command printed, stdout then stderr.
fn printed(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Runs `command` as [`run`] does and fails the test unless it succeeds.
fn succeed(command: &mut Command, limit: Duration) -> Output {
    let output = run(command, limit);
    assert!(output.status.success(), "{command:?} failed ({}):\n{}", output.status, printed(&output));
    output
}

/// A command with the messages in English.
fn command(program: &str) -> Command {
    let mut command = Command::new(program);
    command.env("LC_ALL", "C").env_remove("LC_MESSAGES").env_remove("LANG");
    command
}

/// What `git args` in `dir` prints.
fn git(dir: &Path, args: &[&str]) -> String {
    let output = succeed(command("git").arg("-C").arg(dir).args(args), QUICK);
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Makes the handout `NAME` of `tree` in `out` with teacher/handout.sh,
/// and returns its folder.
fn make_handout_of(tree: &Path, out: &Path) -> PathBuf {
    let output = run(
        command("bash").arg(tree.join("teacher/handout.sh")).args(["--out", "."]).current_dir(out),
        QUICK,
    );
    assert!(output.status.success(), "teacher/handout.sh made no handout:\n{}", printed(&output));
    out.join(NAME)
}

/// Makes the handout of this repository in `out`.
fn make_handout(out: &Path) -> PathBuf {
    make_handout_of(&root(), out)
}

/// Every file under `dir` (symbolic links too), as paths relative to it,
/// but nothing in `dir/.git`.
fn files_in(dir: &Path) -> BTreeSet<String> {
    fn walk(dir: &Path, prefix: &str, files: &mut BTreeSet<String>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = format!("{prefix}{name}");
            let kind = entry.file_type().expect("a file type");
            if kind.is_dir() {
                if path != ".git" {
                    walk(&entry.path(), &format!("{path}/"), files);
                }
            } else {
                files.insert(path);
            }
        }
    }
    let mut files = BTreeSet::new();
    walk(dir, "", &mut files);
    files
}

/// The files git tracks in `tree` that are there.
fn tracked_files(tree: &Path) -> BTreeSet<String> {
    git(tree, &["ls-files", "-z"])
        .split('\0')
        .filter(|file| !file.is_empty() && fs::symlink_metadata(tree.join(file)).is_ok())
        .map(str::to_string)
        .collect()
}

/// The EXCLUDE list at the top of teacher/handout.sh: what never reaches
/// students.
fn excluded() -> Vec<String> {
    let script = fs::read_to_string(root().join("teacher/handout.sh")).expect("teacher/handout.sh");
    let list = script.split("\nEXCLUDE='").nth(1).and_then(|rest| rest.split('\'').next());
    let list: Vec<String> = list
        .expect("an EXCLUDE='...' list in teacher/handout.sh")
        .lines()
        .map(str::trim)
        .filter(|path| !path.is_empty())
        .map(str::to_string)
        .collect();
    assert!(list.iter().any(|path| path == "teacher/"), "EXCLUDE must hold teacher/: {list:?}");
    list
}

fn is_excluded(file: &str, excluded: &[String]) -> bool {
    excluded
        .iter()
        .any(|path| if path.ends_with('/') { file.starts_with(path.as_str()) } else { file == path })
}

/// Spaces as the maker trims them (awk's [ \t\r\f\v], and the newline).
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n' | '\x0b' | '\x0c')
}

fn trim(line: &str) -> &str {
    line.trim_matches(is_blank)
}

/// A line of the keys or of the solution that must not be in a handout.
struct Secret {
    /// Where it comes from: `FILE:LINE`.
    source: String,
    text: String,
}

/// Every line of the keys and of the solution in `tree` that must not be in
/// the handout `handout`, with teacher/handout.sh's rules. Not secret: a
/// line with no letter or digit; of the solution, an added line of fewer
/// than 12 characters besides spaces (`break;`), or one the handout's code
/// has whole (the skeleton, and the lab's server in src/, which the
/// exercises send students to read); of the keys, a line inside a fenced
/// block (a program's output), a line under 40 bytes
/// (a heading, a command), or one the handout shows anyway ([`SHOWN`], the
/// lab's scripts and their recorded runs). Each file of keys or solution
/// found gives at least one secret.
fn secrets(tree: &Path, handout: &Path) -> Vec<Secret> {
    let read =
        |path: &Path| fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let mut code = BTreeSet::new();
    let mut shown = String::new();
    for file in files_in(handout) {
        let is_code =
            file == "labs/student/src/main.rs" || (file.starts_with("src/") && file.ends_with(".rs"));
        let is_shown = SHOWN.contains(&file.as_str())
            || (file.starts_with("labs/") && file.ends_with(".sh") && !file["labs/".len()..].contains('/'))
            || file.starts_with("labs/recorded/");
        if is_code {
            code.extend(read(&handout.join(&file)).lines().map(|line| trim(line).to_string()));
        }
        if is_shown {
            shown.push_str(&read(&handout.join(&file)));
            shown.push('\n');
        }
    }
    let has_word = |text: &str| text.chars().any(|c| c.is_ascii_alphanumeric());
    let mut secrets = Vec::new();
    let mut found = 0;
    for file in SOLUTIONS.iter().chain(KEYS.iter()) {
        let Ok(text) = fs::read_to_string(tree.join(file)) else { continue };
        found += 1;
        let before = secrets.len();
        let is_solution = SOLUTIONS.contains(file);
        // In a key, what a program printed (a fenced block) is the lab's
        // own output, not an answer.
        let mut fenced = false;
        for (number, line) in text.lines().enumerate() {
            if !is_solution && line.trim_start().starts_with("```") {
                fenced = !fenced;
                continue;
            }
            if fenced {
                continue;
            }
            let secret = if is_solution {
                let Some(added) = line.strip_prefix('+').filter(|_| !line.starts_with("+++")) else {
                    continue;
                };
                let added = trim(added);
                let bare = added.chars().filter(|c| !is_blank(*c)).map(char::len_utf8).sum::<usize>();
                (has_word(added) && bare >= 12 && !code.contains(added)).then_some(added)
            } else {
                let line = trim(line);
                (has_word(line) && line.len() >= 40 && !shown.contains(line)).then_some(line)
            };
            if let Some(secret) = secret {
                secrets.push(Secret { source: format!("{file}:{}", number + 1), text: secret.to_string() });
            }
        }
        assert!(secrets.len() > before, "{file} gives no line to look for: the rules let everything through");
    }
    assert!(
        found > 0,
        "neither the keys ({KEYS:?}) nor the solution ({SOLUTIONS:?}) found in {}",
        tree.display()
    );
    secrets
}

/// Each line of the handout that holds a secret: `FILE:LINE holds
/// SOURCE:LINE: TEXT`. Files with a NUL byte are not text, and not read
/// (as grep -I).
fn leaks(handout: &Path, secrets: &[Secret]) -> Vec<String> {
    let mut leaks = Vec::new();
    for file in files_in(handout) {
        let bytes = fs::read(handout.join(&file)).unwrap_or_else(|err| panic!("{file}: {err}"));
        if bytes.contains(&0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        for secret in secrets.iter().filter(|secret| text.contains(&secret.text)) {
            for (number, line) in text.lines().enumerate() {
                if line.contains(&secret.text) {
                    leaks.push(format!("{file}:{} holds {}: {}", number + 1, secret.source, secret.text));
                }
            }
        }
    }
    leaks.sort();
    leaks
}

/// The `[[package]]` entries of a Cargo.lock, each as its text.
fn lock_packages(lock: &str) -> BTreeSet<String> {
    lock.split("[[package]]").skip(1).map(|package| package.trim().to_string()).collect()
}

#[test]
fn the_handout_holds_the_lab_and_nothing_of_the_teachers() {
    let scratch = Scratch::new("files");
    let handout = make_handout(&scratch.0);
    let files = files_in(&handout);
    let excluded = excluded();

    for file in &files {
        for teachers in ["teacher/", ".ci/", "dist/"] {
            assert!(!file.starts_with(teachers), "the handout holds {file}");
        }
    }
    let mut expected: BTreeSet<String> =
        tracked_files(&root()).into_iter().filter(|file| !is_excluded(file, &excluded)).collect();
    // Beside them, GitHub Classroom's autograding file, where GitHub looks.
    expected.insert(CLASSROOM.to_string());
    let missing: Vec<_> = expected.difference(&files).collect();
    let extra: Vec<_> = files.difference(&expected).collect();
    assert!(missing.is_empty(), "the handout lacks {missing:?}");
    assert!(extra.is_empty(), "the handout holds files git does not track here: {extra:?}");

    // As they are here (the scripts still executable), bar the workspace.
    for file in &files {
        let mine = match file.as_str() {
            CLASSROOM => root().join("teacher/classroom.yml"),
            _ => root().join(file),
        };
        let theirs = handout.join(file);
        let mode =
            |path: &Path| fs::symlink_metadata(path).expect("a file").permissions().mode() & 0o111 != 0;
        assert_eq!(
            mode(&mine),
            mode(&theirs),
            "{file}: executable here and not in the handout, or the reverse"
        );
        if file != "Cargo.toml" && file != "Cargo.lock" {
            assert!(fs::read(&mine).ok() == fs::read(&theirs).ok(), "{file} differs in the handout");
        }
    }
    for essential in
        ["Makefile", "README.md", "labs/student/src/main.rs", "labs/checker/src/main.rs", "src/lib.rs"]
    {
        assert!(files.contains(essential), "the handout lacks {essential}");
    }
}

#[test]
fn no_line_of_the_keys_or_the_solution_is_in_the_handout() {
    let scratch = Scratch::new("secrets");
    let handout = make_handout(&scratch.0);
    let secrets = secrets(&root(), &handout);

    let leaks = leaks(&handout, &secrets);
    assert!(
        leaks.is_empty(),
        "the handout gives away {} lines of the answer keys or the reference solution; the first ones:\n{}",
        leaks.len(),
        leaks.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    // The handout's skeleton is the untouched one: every solution applies.
    for patch in SOLUTIONS.iter().map(|file| root().join(file)).filter(|path| path.exists()) {
        git(&handout, &["apply", "--check", &patch.to_string_lossy()]);
    }

    // The search finds a secret pasted anywhere, as a diff line or quoted.
    let solution = secrets.iter().find(|secret| secret.source.contains(".patch:"));
    let key = secrets.iter().find(|secret| secret.source.contains(".md:"));
    let planted: Vec<&Secret> = solution.into_iter().chain(key).collect();
    let paste: String =
        planted.iter().map(|secret| format!("+        {}\n> {} (sic)\n", secret.text, secret.text)).collect();
    fs::write(handout.join("labs/notes.txt"), paste).expect("write labs/notes.txt");
    let found = self::leaks(&handout, &secrets);
    assert!(!found.is_empty(), "a pasted secret was not found");
    for secret in planted {
        assert!(
            found.iter().any(|leak| leak.starts_with("labs/notes.txt:") && leak.contains(&secret.source)),
            "{} pasted in labs/notes.txt was not found: {found:?}",
            secret.source
        );
    }
}

#[test]
fn both_readmes_begin_with_the_two_commands() {
    let scratch = Scratch::new("readmes");
    let handout = make_handout(&scratch.0);
    for readme in ["README.md", "README_EN.md"] {
        let text = fs::read_to_string(handout.join(readme)).unwrap_or_else(|err| panic!("{readme}: {err}"));
        let lines: Vec<&str> = text.lines().take(12).collect();
        let fence = lines.iter().position(|line| line.starts_with("```"));
        let fence =
            fence.unwrap_or_else(|| panic!("{readme} does not begin with a block of commands: {lines:?}"));
        let commands = &lines[fence + 1..];
        assert!(
            commands.len() >= 2
                && commands[0].starts_with("make run")
                && commands[1].starts_with("make test"),
            "{readme} does not begin with `make run` and `make test`: {lines:?}"
        );
    }
}

#[test]
fn the_handouts_workspace_has_no_teacher_crate() {
    let scratch = Scratch::new("workspace");
    let handout = make_handout(&scratch.0);

    let metadata = succeed(
        command("cargo")
            .args(["metadata", "--offline", "--no-deps", "--format-version", "1"])
            .current_dir(&handout),
        QUICK,
    );
    let metadata = String::from_utf8_lossy(&metadata.stdout);
    assert!(
        metadata.contains(r#""name":"tcpechod""#),
        "cargo metadata lists no tcpechod package: {metadata}"
    );
    assert!(!metadata.contains(r#""name":"teacher""#), "the handout's workspace has the teacher crate");

    // Cargo.lock is the repository's, less the teacher crate, and cargo
    // wants it as it is (--locked).
    let lock = |dir: &Path| lock_packages(&fs::read_to_string(dir.join("Cargo.lock")).expect("Cargo.lock"));
    let mut expected = lock(&root());
    expected.retain(|package| !package.starts_with(r#"name = "teacher""#));
    assert_eq!(
        lock(&handout),
        expected,
        "the handout's Cargo.lock is not the repository's without the teacher crate"
    );
    let host = String::from_utf8_lossy(&succeed(command("rustc").arg("-vV"), QUICK).stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_string))
        .expect("rustc -vV names the host");
    succeed(
        command("cargo")
            .args(["metadata", "--offline", "--locked", "--format-version", "1", "--filter-platform", &host])
            .current_dir(&handout),
        QUICK,
    );
}

#[test]
fn the_tarball_holds_the_same_files_as_the_folder() {
    let scratch = Scratch::new("tarball");
    let handout = make_handout(&scratch.0);
    let tarball = scratch.0.join(format!("{NAME}.tar.gz"));

    let listing = succeed(command("tar").arg("-tzf").arg(&tarball), QUICK);
    let listing = String::from_utf8_lossy(&listing.stdout);
    let prefix = format!("{NAME}/");
    assert!(listing.lines().all(|entry| entry.starts_with(&prefix)), "not all under {prefix}:\n{listing}");
    let listed: BTreeSet<String> = listing
        .lines()
        .filter(|entry| !entry.ends_with('/'))
        .map(|entry| entry[prefix.len()..].to_string())
        .collect();
    assert_eq!(listed, files_in(&handout), "the tarball and the folder hold different files");

    let unpacked = scratch.0.join("unpacked");
    fs::create_dir(&unpacked).expect("a folder to unpack into");
    succeed(command("tar").arg("-xzf").arg(&tarball).arg("-C").arg(&unpacked), QUICK);
    for file in &listed {
        let (folder, tar) = (handout.join(file), unpacked.join(NAME).join(file));
        assert!(fs::read(&folder).ok() == fs::read(&tar).ok(), "{file} differs in the tarball");
        let mode =
            |path: &Path| fs::symlink_metadata(path).expect("a file").permissions().mode() & 0o111 != 0;
        assert_eq!(mode(&folder), mode(&tar), "{file}: executable in one and not in the other");
    }
}

#[test]
fn the_handout_is_a_git_repository_of_one_commit_and_a_clean_tree() {
    let scratch = Scratch::new("git");
    let handout = make_handout(&scratch.0);

    assert_eq!(git(&handout, &["rev-list", "--count", "HEAD"]).trim(), "1", "the handout's history");
    assert_eq!(git(&handout, &["branch", "--show-current"]).trim(), "main");
    let status = git(&handout, &["status", "--porcelain", "--ignored", "--untracked-files=all"]);
    assert!(status.is_empty(), "the handout's work tree is not clean:\n{status}");
    assert_eq!(tracked_files(&handout), files_in(&handout), "the commit and the folder hold different files");
}

#[test]
fn the_handout_builds_offline_and_stays_clean() {
    let scratch = Scratch::new("build");
    let handout = make_handout(&scratch.0);

    // Its own target folder (make build copies from target/release), and
    // no network: the lock given must do.
    let output = run(
        command("make")
            .arg("build")
            .current_dir(&handout)
            .env("CARGO_TARGET_DIR", handout.join("target"))
            .env("CARGO_NET_OFFLINE", "true"),
        BUILD,
    );
    assert!(output.status.success(), "make build failed in the handout:\n{}", printed(&output));
    for binary in ["TCPechod", "TCPecho"] {
        let mode = fs::metadata(handout.join(binary)).map(|meta| meta.permissions().mode());
        assert!(mode.is_ok_and(|mode| mode & 0o111 != 0), "make build left no ./{binary}");
    }
    let status = git(&handout, &["status", "--porcelain", "--untracked-files=all"]);
    assert!(status.is_empty(), "the build changed the handout's tree:\n{status}");
}

#[test]
fn in_a_handout_make_handout_says_it_is_one() {
    let scratch = Scratch::new("again");
    let handout = make_handout(&scratch.0);

    for (lang, words) in [("C", "this tree is already a handout"), ("es_ES.UTF-8", "ya es el material")] {
        let output =
            run(Command::new("make").arg("handout").current_dir(&handout).env("LC_ALL", lang), QUICK);
        let said = printed(&output);
        assert!(!output.status.success(), "make handout succeeded in a handout:\n{said}");
        assert_eq!(said.lines().count(), 1, "not one line:\n{said}");
        assert!(said.contains(words), "LC_ALL={lang}: {said}");
    }
    assert!(!handout.join("dist").exists(), "make handout made something in a handout");
}

#[test]
fn make_handout_takes_a_name_and_refuses_a_leak() {
    // A copy of this tree as it is now (tracked files, edits included), a
    // repository of its own where the test may change what it likes.
    let scratch = Scratch::new("maker");
    let tree = scratch.0.join("lab");
    let root = root();
    for file in tracked_files(&root) {
        let to = tree.join(&file);
        fs::create_dir_all(to.parent().expect("a parent folder")).expect("a folder in the copy");
        fs::copy(root.join(&file), &to).unwrap_or_else(|err| panic!("copy {file}: {err}"));
    }
    git(&tree, &["init", "-q", "-b", "main"]);
    git(&tree, &["add", "-A"]);
    git(&tree, &["-c", "user.name=Test", "-c", "user.email=test@localhost", "commit", "-q", "-m", "The lab"]);
    let make =
        |args: &[&str]| run(command("make").args(args).current_dir(&tree).env("NAME", "some-machine"), QUICK);
    let dist = tree.join("dist");

    // NAME from the environment (WSL sets it to the machine's) is not taken.
    let output = make(&["handout"]);
    assert!(output.status.success(), "make handout failed:\n{}", printed(&output));
    assert!(
        printed(&output).contains(&format!("dist/{NAME}.tar.gz")),
        "where is the tarball?\n{}",
        printed(&output)
    );
    assert!(dist.join(NAME).join(".git").is_dir() && dist.join(format!("{NAME}.tar.gz")).is_file());

    let output = make(&["handout", "NAME=redes-2027"]);
    assert!(output.status.success(), "make handout NAME=redes-2027 failed:\n{}", printed(&output));
    let listing = succeed(command("tar").arg("-tzf").arg(dist.join("redes-2027.tar.gz")), QUICK);
    assert!(String::from_utf8_lossy(&listing.stdout).lines().all(|entry| entry.starts_with("redes-2027/")));
    let secrets = secrets(&tree, &dist.join("redes-2027"));

    // A line of the solution pasted into the statement: refused, naming
    // the line, and nothing left to hand out by mistake.
    let readme = fs::read_to_string(tree.join("README.md")).expect("README.md");
    let solution =
        secrets.iter().find(|secret| secret.source.contains(".patch:")).expect("a line of the solution");
    fs::write(tree.join("README.md"), format!("{readme}\n+    {}\n", solution.text))
        .expect("write README.md");
    let pasted_at = readme.lines().count() + 2;
    let output = make(&["handout", "NAME=redes-2027"]);
    let said = printed(&output);
    assert!(!output.status.success(), "a handout with a line of the solution was made:\n{said}");
    assert!(said.contains(&format!("README.md:{pasted_at} holds line {}", solution.source)), "{said}");
    assert!(
        !dist.join("redes-2027").exists() && !dist.join("redes-2027.tar.gz").exists(),
        "a refused handout was left"
    );
    fs::write(tree.join("README.md"), readme).expect("restore README.md");

    // The solution applied here, tried and forgotten: refused.
    let patch = SOLUTIONS.iter().find(|file| tree.join(file).exists()).expect("the solution");
    git(&tree, &["apply", patch]);
    let output = make(&["handout"]);
    let said = printed(&output);
    assert!(!output.status.success(), "a handout with the solution applied was made:\n{said}");
    assert!(said.contains("labs/student is not the untouched skeleton"), "{said}");
    assert!(!dist.join(NAME).exists(), "a refused handout was left");
}

#[test]
fn make_test_passes_in_the_handout_once_exercises_5_to_7_are_done() {
    // The README's second command, in what students get, after a student
    // did exercises 5 to 7 as the reference solution does. (Untouched, it
    // is this repository's own `make test`.) The build goes to a target
    // folder kept between runs, so only the first one starts from scratch;
    // the container tests, which CI runs once already, are left out.
    // The handout is made at the same place every run, beside a target
    // folder that stays (the test programs keep the folder they were
    // built for), and its target/ is a link to it, as a student's clone
    // has its own (some tests look for the binaries in target/release).
    let place = Path::new(env!("CARGO_TARGET_TMPDIR")).join("handout-make-test");
    let out = place.join("out");
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    let _cleanup = Scratch(out.clone());
    let handout = make_handout(&out);
    let solution = root().join("teacher/solution.patch");
    succeed(command("git").arg("-C").arg(&handout).arg("apply").arg(&solution), QUICK);
    let target = place.join("target");
    fs::create_dir_all(&target).unwrap();
    std::os::unix::fs::symlink(&target, handout.join("target")).unwrap();
    let output = run(
        command("make")
            .arg("test")
            .current_dir(&handout)
            .env_remove("CARGO_TARGET_DIR")
            // The container tests run once already, in this repository's
            // make test: here they find no Docker, and, outside CI, skip.
            .env_remove("CI")
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        Duration::from_secs(45 * 60),
    );
    let printed = printed(&output);
    // What failed: each failing test and the lines after it.
    let lines: Vec<&str> = printed.lines().collect();
    let failed: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(_, line)| line.contains("panicked at") || line.starts_with("error: test failed"))
        .map(|(i, _)| lines[i..(i + 4).min(lines.len())].join("\n"))
        .collect();
    assert!(
        output.status.success(),
        "make test failed in the handout with exercises 5 to 7 done ({}):\n{}",
        output.status,
        failed.join("\n--\n")
    );
    assert!(printed.contains("test result: ok"), "make test ran the tests:\n{printed}");
}
