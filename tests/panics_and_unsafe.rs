//! A guard of the code itself: a panic (a bug) ends a program as one line
//! and exit status 70, not as a backtrace. (The other guard, that every
//! `unsafe` block says in a `// SAFETY:` comment why it is sound, is
//! clippy's lint `undocumented_unsafe_blocks`, denied at the top of every
//! crate and checked by `make lint`.)

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
