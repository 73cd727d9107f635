//! What `threads` must show: threads of one process with their own ids,
//! joined with their results; a mutex-guarded counter that is always right;
//! an unguarded one that loses updates.

use std::collections::HashSet;
use std::process::Command;

const EXPECTED: u64 = 4_000_000;

fn run() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_threads")).output().expect("run threads");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

fn number_after(line: &str, key: &str) -> u64 {
    let start = line.find(key).unwrap_or_else(|| panic!("{key:?} in {line:?}")) + key.len();
    line[start..].trim_start().split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
}

#[test]
fn threads_share_a_process_and_have_their_own_ids() {
    let text = run();
    let main = text.lines().find(|l| l.starts_with("[main] process")).expect("main line");
    let pid = number_after(main, "process");
    let hellos: Vec<&str> = text.lines().filter(|l| l.contains("hello from thread")).collect();
    assert_eq!(hellos.len(), 4, "{text}");
    let mut ids = HashSet::new();
    for hello in &hellos {
        assert_eq!(number_after(hello, "process"), pid, "one process: {hello}");
        ids.insert(number_after(hello, "thread id"));
    }
    assert_eq!(ids.len(), 4, "each thread has its own id");
    assert!(!ids.contains(&pid), "and none is the main thread's");
    for n in 1..=4 {
        let joined = format!("joined thread {n} (pthread_join): it returned {}", n * 100);
        assert!(text.contains(&joined), "{joined}\n{text}");
    }
}

#[test]
fn the_mutex_keeps_the_count_and_the_race_loses_updates() {
    // Every run: the window between the unguarded read and write is open
    // most of the time, so threads running at once on two cores, or
    // taking turns on one, always overwrite some of each other's updates.
    for _ in 0..3 {
        let text = run();
        let guarded = text.lines().find(|l| l.contains("with a mutex:")).expect("mutex line");
        assert_eq!(number_after(guarded, "counter ="), EXPECTED, "{guarded}");
        let racy = text.lines().find(|l| l.contains("without a mutex:")).expect("race line");
        let counted = number_after(racy, "counter =");
        assert!(counted < EXPECTED, "updates must be lost: {racy}");
        assert_eq!(number_after(racy, "):"), EXPECTED - counted, "lost updates are reported: {racy}");
    }
}
