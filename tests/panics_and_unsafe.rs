//! Two guards of the code itself: a panic (a bug) ends a program as one
//! line and exit status 70, not as a backtrace; and every `unsafe` block
//! of the project says, in a `// SAFETY:` comment, why it is sound.

use std::path::Path;
use std::process::ExitCode;

#[test]
fn a_panic_becomes_exit_status_70() {
    let code = tcpechod::cli::guarded("test", || panic!("a bug"));
    assert_eq!(format!("{code:?}"), format!("{:?}", ExitCode::from(tcpechod::cli::EXIT_INTERNAL)));
    // The hook is ours: a later panic is described by panic_text too.
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = std::sync::Arc::clone(&text);
    std::panic::set_hook(Box::new(move |info| {
        *seen.lock().unwrap() = tcpechod::cli::panic_text(info);
    }));
    let _ = std::panic::catch_unwind(|| panic!("boom {}", 42));
    let _ = std::panic::take_hook();
    let text = text.lock().unwrap().clone();
    assert!(text.starts_with("boom 42 (at tests/panics_and_unsafe.rs:"), "{text}");
}

/// Every line of Rust source under `dir`, with its file.
fn sources(dir: &Path, out: &mut Vec<(String, Vec<String>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.display().to_string(), text.lines().map(String::from).collect()));
        }
    }
}

#[test]
fn every_unsafe_block_says_why_it_is_sound() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "processes/src", "threads/src", "bench/src"] {
        sources(&root.join(dir), &mut files);
    }
    let mut blocks = 0;
    for (file, lines) in &files {
        for (n, line) in lines.iter().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if !code.contains("unsafe {") && !code.contains("unsafe fn") && !code.contains("unsafe impl") {
                continue;
            }
            blocks += 1;
            let from = n.saturating_sub(12);
            assert!(
                lines[from..=n].iter().any(|l| l.trim_start().starts_with("// SAFETY:")),
                "{file}:{}: unsafe without a // SAFETY: comment above it",
                n + 1
            );
        }
    }
    assert!(blocks >= 8, "the project's unsafe blocks were found ({blocks})");
}
