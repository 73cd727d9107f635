//! What `processes` must show: after fork, parent and child see `test` at
//! the same address, with different values.

use std::process::Command;

/// The values of "key = value" or "key value" pairs that follow `key` in `line`.
fn after<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line.find(key).unwrap_or_else(|| panic!("{key:?} in {line:?}")) + key.len();
    line[start..].split([',', ' ', ';', ']']).find(|s| !s.is_empty()).unwrap()
}

#[test]
fn fork_copies_memory_to_the_same_addresses() {
    let out = Command::new(env!("CARGO_BIN_EXE_processes")).output().expect("run processes");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let before = lines.iter().find(|l| l.contains("before fork")).expect("before line");
    let child = lines.iter().find(|l| l.starts_with("[child")).expect("child line");
    let after_child = lines.iter().position(|l| l.contains("after the child")).expect("after line");
    let child_at = lines.iter().position(|l| l.starts_with("[child")).unwrap();
    assert!(child_at < after_child, "the parent waits for the child:\n{text}");
    let after_line = lines[after_child];

    let parent_pid = after(before, "[parent");
    assert_eq!(after(after_line, "[parent"), parent_pid);
    assert_eq!(after(child, "my parent is"), parent_pid, "the child's parent is the parent");
    assert_ne!(after(child, "[child"), parent_pid, "two processes");

    assert_eq!(after(before, "test ="), "10");
    assert_eq!(after(child, "test ="), "20", "the child changed its copy");
    assert_eq!(after(after_line, "test ="), "10", "the parent's copy did not change");
    let address = after(before, "address");
    assert!(address.starts_with("0x"));
    assert_eq!(after(child, "address"), address, "same virtual address in the child");
    assert_eq!(after(after_line, "address"), address);
    assert_eq!(text.matches("before fork").count(), 1, "nothing printed twice after fork");
}
