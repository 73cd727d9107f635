//! The student's server and its checker (labs/student): the checker fails
//! the untouched skeleton on exactly the exercises left to the student (5,
//! 6 and 7), each with its explanation, and scores it 0/3; it passes the
//! teacher's reference solution (teacher/solution.patch) on every one,
//! 3/3; in English and in Spanish. (The cheats it catches, its JSON and
//! how it cleans up: tests/student_checker.rs.)

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use testbed::*;

/// A copy of labs/student at `dir/labs/student`, where the patch expects it.
fn student_crate_in(dir: &Path) -> PathBuf {
    let to = dir.join("labs/student");
    copy_student_crate(&to);
    to
}

/// `make` and then `./check` in `crate_dir`, with LANG=`lang`; both copies
/// build in one target directory, so the second build is quick.
fn make_and_check(crate_dir: &Path, target: &Path, lang: &str) -> Output {
    let built = Command::new("make")
        .args(["-s", "all"])
        .arg(format!("TARGET={}", target.display()))
        .current_dir(crate_dir)
        .stdin(Stdio::null())
        .output()
        .expect("make");
    assert!(
        built.status.success(),
        "make in {}:\n{}",
        crate_dir.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    Command::new("./check")
        .current_dir(crate_dir)
        .env("LANG", lang)
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .output()
        .expect("./check")
}

/// The lines of the section of the checker's output that starts with `title`.
fn section<'a>(text: &'a str, title: &str) -> Vec<&'a str> {
    text.split("\n\n")
        .find(|part| part.trim_start().starts_with(title))
        .unwrap_or_else(|| panic!("no section {title:?} in:\n{text}"))
        .lines()
        .collect()
}

#[test]
fn the_checker_fails_the_skeleton_on_exercises_5_6_7_and_passes_the_solution() {
    let dir = std::env::temp_dir().join(format!("tcpechod-student-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    // Shared with tests/statement.rs (test binaries run one at a time),
    // and kept between runs: the dependencies build once.
    let target = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("student");
    let skeleton = student_crate_in(&dir.join("skeleton"));

    let out = make_and_check(&skeleton, &target, "C");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{text}");
    let given = section(&text, "Exercises 1 to 4");
    let checks: Vec<&&str> = given.iter().filter(|l| l.starts_with("  [")).collect();
    assert!(
        checks.len() == 4 && checks.iter().all(|l| l.starts_with("  [OK]")),
        "the given part passes:\n{text}"
    );
    for (title, seen) in [
        ("Exercise 5", "children are still zombies (state Z"),
        ("Exercise 6", "has no SIGPIPE handler (SigCgt"),
        ("Exercise 7", "the server ended this way: signal: 15"),
        // A handler not written yet is not said to do its job.
        ("Exercise 6", "count_sigpipe() is still empty"),
        ("Exercise 7", "on_sigterm() is still empty"),
    ] {
        let lines = section(&text, title);
        let failed = lines.iter().position(|l| l.starts_with("  [FAIL]") && l.contains(seen));
        let failed = failed.unwrap_or_else(|| panic!("{title} fails with {seen:?}:\n{text}"));
        assert!(lines[failed + 1].contains("expected: "), "{title} says what it expected:\n{text}");
        assert!(lines[failed + 2].contains("see: "), "{title} says where to look:\n{text}");
    }
    assert_eq!(text.lines().last(), Some("SCORE 0/3"), "{text}");
    let out = make_and_check(&skeleton, &target, "es_ES.UTF-8");
    let texto = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        texto.contains("Ejercicio 5: el reaper") && texto.contains("[MAL]") && texto.contains("se esperaba:"),
        "{texto}"
    );
    assert_eq!(texto.lines().last(), Some("NOTA 0/3"), "{texto}");

    // The teacher's solution, applied as a teacher would, at the top of a
    // copy of the repository.
    let solved_root = dir.join("solved");
    let solved = student_crate_in(&solved_root);
    apply_solution(&solved_root);
    for lang in ["C", "es_ES.UTF-8"] {
        let out = make_and_check(&solved, &target, lang);
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert_eq!(out.status.code(), Some(0), "{text}");
        assert!(!text.contains("[FAIL]") && !text.contains("[MAL]"), "{text}");
        assert_eq!(
            text.matches("[OK]").count() + text.matches("[BIEN]").count(),
            17,
            "every check ran:\n{text}"
        );
        let score = if lang == "C" { "SCORE 3/3" } else { "NOTA 3/3" };
        assert_eq!(text.lines().last(), Some(score), "{text}");
    }
    // No server of the checker is left behind.
    for copy in [&skeleton, &solved] {
        assert_eq!(servers_of(copy), 0, "a server of {} is still running", copy.display());
    }

    // Nor when the student stops the checker with Ctrl-C in the middle.
    let mut check = KillOnDrop(
        Command::new("./check")
            .current_dir(&solved)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("./check"),
    );
    wait_until("a server started by the checker", || (servers_of(&solved) > 0).then_some(()));
    signal(check.0.id() as i32, libc::SIGINT);
    wait_until("the checker to stop", || check.0.try_wait().unwrap());
    wait_until("its servers to stop", || (servers_of(&solved) == 0).then_some(()));
    let _ = fs::remove_dir_all(&dir);
}

/// Processes running the server built in the crate copy `dir` (a zombie
/// has no executable left, and is not counted).
fn servers_of(dir: &Path) -> usize {
    let binary = dir.join("TCPechod");
    all_processes()
        .iter()
        .filter(|p| fs::read_link(format!("/proc/{}/exe", p.pid)).ok().as_deref() == Some(binary.as_path()))
        .count()
}
