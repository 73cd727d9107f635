//! Where the programs under test are, and the folders of the repository.
//!
//! The programs are the ones cargo built beside the test that runs: a test
//! binary lives in `TARGET/PROFILE/deps/`, the programs in
//! `TARGET/PROFILE/`, whatever the profile and the target folder
//! (`CARGO_TARGET_DIR`). Cargo builds them before it runs the tests of
//! their own package (`tests/`) and of the whole workspace (`make test`).

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A program of the lab that tests run: its path, found on first use.
/// It reads as that path wherever a path or a `&str` is wanted.
#[derive(Clone, Copy)]
pub struct Program {
    name: &'static str,
    path: &'static OnceLock<String>,
}

static SERVER_PATH: OnceLock<String> = OnceLock::new();
static CLIENT_PATH: OnceLock<String> = OnceLock::new();

/// The server under test, `TCPechod`.
pub static SERVER: Program = Program { name: "TCPechod", path: &SERVER_PATH };
/// The client under test, `TCPecho`.
pub static CLIENT: Program = Program { name: "TCPecho", path: &CLIENT_PATH };

impl Program {
    /// Its path.
    pub fn path(&self) -> &'static str {
        self.path.get_or_init(|| build_folder().join(self.name).to_string_lossy().into_owned())
    }
}

/// The folder cargo builds the programs into: the running test's folder
/// (or the one above it, `deps/`).
fn build_folder() -> PathBuf {
    let exe = std::env::current_exe().expect("the path of the running test");
    let dir = exe.parent().expect("the folder of the running test");
    match dir.file_name() == Some(OsStr::new("deps")) {
        true => dir.parent().expect("the folder above deps/").to_path_buf(),
        false => dir.to_path_buf(),
    }
}

impl Deref for Program {
    type Target = str;
    fn deref(&self) -> &str {
        self.path()
    }
}

impl AsRef<OsStr> for Program {
    fn as_ref(&self) -> &OsStr {
        OsStr::new(self.path())
    }
}

impl AsRef<Path> for Program {
    fn as_ref(&self) -> &Path {
        Path::new(self.path())
    }
}

impl fmt::Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

impl fmt::Debug for Program {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.path(), f)
    }
}

/// The names of every server model, from the server's own table: a new
/// model is tested by every test that loops over them.
pub fn modes() -> impl Iterator<Item = &'static str> {
    tcpechod::models::MODELS.iter().map(|model| model.name)
}

/// The top of the repository (this crate is one folder below it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("a folder above testbed/").to_path_buf()
}

/// A copy of the student's crate (labs/student, its sources only) at `to`,
/// and of the checker (labs/checker) beside it, at `to/../checker`, where
/// the student's Makefile builds it from: each crate's manifest, lock,
/// Makefile and formatting rules, if it has them, and every file of its
/// src/.
pub fn copy_student_crate(to: &Path) {
    let checker = to.parent().expect("a folder above the student's crate").join("checker");
    for (from, to) in [("labs/student", to), ("labs/checker", checker.as_path())] {
        let from = repo_root().join(from);
        fs::create_dir_all(to.join("src")).unwrap();
        let sources = fs::read_dir(from.join("src"))
            .unwrap()
            .map(|entry| entry.unwrap())
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .map(|entry| Path::new("src").join(entry.file_name()));
        let top = ["Cargo.toml", "Cargo.lock", "Makefile", "rustfmt.toml"].map(PathBuf::from);
        for file in top.into_iter().filter(|f| from.join(f).is_file()).chain(sources) {
            fs::copy(from.join(&file), to.join(&file))
                .unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        }
    }
}

/// Applies the reference solution (teacher/solution.patch, which only the
/// teacher's tree has) to the copy of the repository at `top`, whose
/// labs/student it completes, as a teacher does: `git apply -p1`.
pub fn apply_solution(top: &Path) {
    let patch = repo_root().join("teacher/solution.patch");
    let applied = std::process::Command::new("git")
        .args(["apply", "-p1"])
        .arg(&patch)
        .current_dir(top)
        .output()
        .expect("git apply");
    assert!(applied.status.success(), "git apply: {}", String::from_utf8_lossy(&applied.stderr));
}

/// A folder of the test's own under the temporary directory, empty at
/// first and removed with the value.
pub struct Scratch {
    /// The folder.
    pub dir: PathBuf,
}

impl Scratch {
    /// `tcpechod-TAG-PID`: this test process's own.
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tcpechod-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|err| panic!("{}: {err}", dir.display()));
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The server binary where any user may run it (a fresh folder under the
/// temporary directory, removed with the value), for tests that run the
/// server as an unprivileged user (setpriv, unshare --setuid).
///
/// A hard link when the file system allows: a copy is written through a
/// descriptor, and a process forked meanwhile by another test thread
/// inherits it until it execs, so that executing the copy at once can
/// fail with "Text file busy" (ETXTBSY). A link has no such descriptor.
/// The copy, where linking is refused, is retried for that reason.
pub struct BinaryForAnyone {
    _dir: Scratch,
    /// The server's path there.
    pub path: String,
}

impl BinaryForAnyone {
    /// The server in a folder of its own, `tcpechod-TAG-PID`.
    pub fn new(tag: &str) -> BinaryForAnyone {
        use std::os::unix::fs::PermissionsExt;
        use std::process::{Command, Stdio};
        let dir = Scratch::new(tag);
        fs::set_permissions(&dir.dir, fs::Permissions::from_mode(0o755)).unwrap();
        let path = dir.dir.join("TCPechod");
        if fs::hard_link(SERVER, &path).is_err() {
            fs::copy(SERVER, &path).unwrap();
            // Wait until no process holds a descriptor that writes to it.
            crate::wait::wait_until("the copy to be executable", || {
                Command::new(&path)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .status()
                    .ok()
                    .filter(|s| s.success())
            });
        }
        BinaryForAnyone { _dir: dir, path: path.to_string_lossy().into_owned() }
    }
}
