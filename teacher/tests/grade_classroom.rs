//! GitHub Classroom's autograding file (teacher/classroom.yml, which the
//! handout puts at .github/workflows/classroom.yml)
//! is well formed, in the format of today (three command-grader steps, one
//! point each, and the reporter that adds them up), says that the grade of
//! record comes from teacher/grade, and its commands work in the lab as
//! the runner runs them: each passes on the reference solution and fails
//! on the untouched skeleton.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testbed::*;

/// A node of the YAML this file reads: block maps, block sequences and
/// plain or quoted scalars, the subset GitHub's workflow files use.
#[derive(Debug, Clone, PartialEq)]
enum Yaml {
    Scalar(String),
    Seq(Vec<Yaml>),
    Map(Vec<(String, Yaml)>),
}

impl Yaml {
    fn get(&self, key: &str) -> &Yaml {
        match self {
            Yaml::Map(pairs) => {
                pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v).unwrap_or_else(|| panic!("no {key:?}"))
            }
            other => panic!("not a map, looking for {key:?}: {other:?}"),
        }
    }

    fn text(&self) -> &str {
        match self {
            Yaml::Scalar(text) => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    fn items(&self) -> &[Yaml] {
        match self {
            Yaml::Seq(items) => items,
            other => panic!("not a sequence: {other:?}"),
        }
    }

    fn keys(&self) -> Vec<&str> {
        match self {
            Yaml::Map(pairs) => pairs.iter().map(|(k, _)| k.as_str()).collect(),
            other => panic!("not a map: {other:?}"),
        }
    }

    /// Parses `text`, strictly: a tab, an odd indentation, a line that is
    /// neither `key: value`, `key:` nor `- item`, a line out of place, or a
    /// key twice in a map, is an error.
    fn parse(text: &str) -> Result<Yaml, String> {
        let mut lines: Vec<(usize, String)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.contains('\t') {
                return Err(format!("line {}: a tab", n + 1));
            }
            let content = line.trim_start_matches(' ');
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let indent = line.len() - content.len();
            if indent % 2 != 0 {
                return Err(format!("line {}: odd indentation", n + 1));
            }
            lines.push((indent, content.trim_end().to_string()));
        }
        let mut at = 0;
        let node = Yaml::block(&mut lines, &mut at, 0)?;
        match lines.get(at) {
            None => Ok(node),
            Some(line) => Err(format!("a line out of place: {line:?}")),
        }
    }

    fn block(lines: &mut [(usize, String)], at: &mut usize, indent: usize) -> Result<Yaml, String> {
        if lines[*at].1 == "-" || lines[*at].1.starts_with("- ") {
            let mut items = Vec::new();
            while *at < lines.len() && lines[*at].0 == indent && lines[*at].1.starts_with('-') {
                // The item's first line, as if it stood on a line of its own.
                let rest = lines[*at].1[1..].trim_start().to_string();
                if rest.contains(": ") || rest.ends_with(':') {
                    lines[*at] = (indent + 2, rest);
                    items.push(Yaml::block(lines, at, indent + 2)?);
                } else {
                    items.push(Yaml::Scalar(unquote(&rest)));
                    *at += 1;
                }
            }
            return Ok(Yaml::Seq(items));
        }
        let mut pairs: Vec<(String, Yaml)> = Vec::new();
        while *at < lines.len() && lines[*at].0 == indent && !lines[*at].1.starts_with('-') {
            let line = lines[*at].1.clone();
            let (key, value) = match line.split_once(": ") {
                Some((key, value)) => (key, value.trim()),
                None => (line.strip_suffix(':').ok_or(format!("not `key: value`: {line:?}"))?, ""),
            };
            let key = unquote(key);
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(format!("not a key: {key:?}"));
            }
            if pairs.iter().any(|(k, _)| *k == key) {
                return Err(format!("{key:?} twice"));
            }
            *at += 1;
            let value = match value.is_empty() {
                false => Yaml::Scalar(unquote(value)),
                true => match lines.get(*at) {
                    Some(&(next, ref text)) if next > indent || (next == indent && text.starts_with('-')) => {
                        Yaml::block(lines, at, next)?
                    }
                    _ => Yaml::Scalar(String::new()),
                },
            };
            pairs.push((key, value));
        }
        Ok(Yaml::Map(pairs))
    }
}

fn unquote(text: &str) -> String {
    for quote in ['\'', '"'] {
        if let Some(inner) = text.strip_prefix(quote).and_then(|t| t.strip_suffix(quote)) {
            return inner.to_string();
        }
    }
    text.to_string()
}

fn workflow() -> String {
    fs::read_to_string(repo_root().join("teacher/classroom.yml")).unwrap()
}

/// The command of each grading step, by exercise.
fn grading_commands() -> Vec<(String, String, u64)> {
    let yaml = Yaml::parse(&workflow()).expect("well-formed YAML");
    let steps = yaml.get("jobs").get("run-autograding-tests").get("steps").items();
    steps
        .iter()
        .filter(|s| s.get("uses").text() == "classroom-resources/autograding-command-grader@v1")
        .map(|s| {
            let with = s.get("with");
            let minutes: u64 = with.get("timeout").text().parse().expect("a timeout in minutes");
            (with.get("test-name").text().to_string(), with.get("command").text().to_string(), minutes)
        })
        .collect()
}

#[test]
fn the_workflow_is_classrooms_format_of_today() {
    let text = workflow();
    let yaml = Yaml::parse(&text).expect("well-formed YAML");
    assert_eq!(yaml.keys(), ["name", "on", "permissions", "jobs"]);
    let on: Vec<&str> = yaml.get("on").items().iter().map(Yaml::text).collect();
    assert_eq!(on, ["push", "repository_dispatch"]);
    assert_eq!(yaml.get("permissions").get("checks").text(), "write");
    let job = yaml.get("jobs").get("run-autograding-tests");
    assert_eq!(job.get("runs-on").text(), "ubuntu-latest");
    assert_eq!(job.get("if").text(), "github.actor != 'github-classroom[bot]'");
    let steps = job.get("steps").items();
    assert_eq!(steps.len(), 5, "checkout, three exercises, the reporter");
    assert!(steps[0].get("uses").text().starts_with("actions/checkout@v"));
    let mut ids = Vec::new();
    for (step, exercise) in steps[1..4].iter().zip(["5", "6", "7"]) {
        let id = format!("exercise-{exercise}");
        assert_eq!(step.get("id").text(), id);
        assert_eq!(step.get("uses").text(), "classroom-resources/autograding-command-grader@v1");
        let with = step.get("with");
        assert_eq!(with.get("test-name").text(), format!("Exercise {exercise}"));
        assert_eq!(with.get("command").text(), format!("cd labs/student && make -s && ./check {exercise}"));
        assert_eq!(with.get("max-score").text(), "1");
        let minutes: u64 = with.get("timeout").text().parse().unwrap();
        assert!((1..=60).contains(&minutes), "a timeout in minutes, at most 60: {minutes}");
        ids.push(id);
    }
    let reporter = &steps[4];
    assert_eq!(reporter.get("uses").text(), "classroom-resources/autograding-grading-reporter@v1");
    assert_eq!(reporter.get("with").get("runners").text(), ids.join(","));
    for id in &ids {
        let key = format!("{}_RESULTS", id.to_uppercase());
        assert_eq!(reporter.get("env").get(&key).text(), format!("${{{{steps.{id}.outputs.result}}}}"));
    }
    // Its comment tells the teacher where the grade of record comes from.
    let comment: String = text.lines().take_while(|l| l.starts_with('#')).collect::<Vec<_>>().join("\n");
    for words in ["student's copy of the", "teacher/grade", "gh classroom clone student-repos", "Download"] {
        assert!(comment.contains(words), "the comment at the top says {words:?}:\n{comment}");
    }
    // And a real YAML parser reads the same, where there is one.
    let python = Command::new("python3")
        .args(["-c", "import sys, yaml; w = yaml.safe_load(sys.stdin); print(len(w['jobs']['run-autograding-tests']['steps']))"])
        .stdin(fs::File::open(repo_root().join("teacher/classroom.yml")).unwrap())
        .output();
    match python {
        Ok(out) if out.status.success() => assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "5"),
        _ => eprintln!(
            "no python3 with its yaml module here: the workflow was read by this test's parser only"
        ),
    }
}

#[test]
fn the_parser_refuses_what_is_not_well_formed() {
    for bad in ["a: 1\n\tb: 2\n", "a:\n   b: 1\n", "a: 1\na: 2\n", "a: 1\njust words\n", "a b: 1\n"] {
        assert!(Yaml::parse(bad).is_err(), "{bad:?}");
    }
}

/// A scratch copy of the repository, as a student's clone holds it (the
/// student's crate and the checker), with the solution applied or not.
struct Checkout(PathBuf);

impl Checkout {
    fn new(tag: &str, solved: bool) -> Checkout {
        let top = std::env::temp_dir().join(format!("tcpechod-classroom-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&top);
        copy_student_crate(&top.join("labs/student"));
        if solved {
            apply_solution(&top);
        }
        Checkout(top)
    }
}

impl Drop for Checkout {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs a step's command as the command grader does (a shell at the top
/// of the repository, no locale), within its timeout; the exit status and
/// the last line of its output.
fn run_step(top: &Path, command: &str, minutes: u64) -> (Option<i32>, String) {
    let output = run_within(
        Command::new("sh")
            .args(["-c", command])
            .current_dir(top)
            .env_remove("LANG")
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            // The builds share one target directory, kept between runs.
            .env("TARGET", PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("classroom")),
        Duration::from_secs(minutes * 60),
    );
    (output.status.code(), stdout_text(&output).lines().last().unwrap_or_default().to_string())
}

#[test]
fn each_step_passes_the_solution_and_fails_the_skeleton() {
    let commands = grading_commands();
    assert_eq!(commands.len(), 3);
    // One copy after the other: the second is newer than what the first
    // built, so that cargo rebuilds it in the shared target directory.
    for (solved, code, score) in [(true, 0, "SCORE 1/1"), (false, 1, "SCORE 0/1")] {
        let clone = Checkout::new(if solved { "solved" } else { "skeleton" }, solved);
        for (name, command, minutes) in &commands {
            let (status, last) = run_step(&clone.0, command, *minutes);
            assert_eq!(status, Some(code), "{name} ({command}), solved: {solved}: {last}");
            assert_eq!(last, score, "{name}, solved: {solved}");
        }
    }
}
