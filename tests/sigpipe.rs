//! The SIGPIPE demonstration of the lab, in its three modes, 20 times each:
//! the client sends two lines 50 ms apart and closes without reading; the
//! server echoes the first line 100 ms after reading it, into a closed
//! socket, which answers with RST; the child's next write meets the broken
//! connection and raises SIGPIPE.

mod common;

use common::*;

const RUNS: usize = 20;

/// Runs the recipe once against a fresh server and returns its log.
fn recipe(mode: &str) -> Vec<String> {
    let mut server = Server::start(&["--sigpipe", mode, "--delay", "100"]);
    let out = server.client(&["--interval", "50", "--no-read"], b"one\ntwo\n");
    assert!(out.status.success(), "{}", stderr_text(&out));
    server.wait_for_line(|l| l.contains("reaped child"));
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    let summary = server.summary();
    assert_eq!((summary.accepted, summary.reaped, summary.sigpipe), (1, 1, 1), "{mode}: {:?}", server.log);
    std::mem::take(&mut server.log)
}

fn count(log: &[String], text: &str) -> usize {
    log.iter().filter(|l| l.contains(text)).count()
}

#[test]
fn count_mode_counts_the_sigpipe_and_the_child_exits_3() {
    for run in 0..RUNS {
        let log = recipe("count");
        assert_eq!(
            count(&log, "] finished: 4 bytes echoed (broken pipe: SIGPIPE caught (count=1)"),
            1,
            "run {run}: {log:?}"
        );
        assert_eq!(count(&log, "exited with status 3: broken pipe"), 1, "run {run}: {log:?}");
    }
}

#[test]
fn ignore_mode_turns_sigpipe_into_epipe_and_the_child_exits_3() {
    for run in 0..RUNS {
        let log = recipe("ignore");
        assert_eq!(
            count(&log, "] finished: 4 bytes echoed (broken pipe: SIGPIPE ignored, the write got EPIPE)"),
            1,
            "run {run}: {log:?}"
        );
        assert_eq!(count(&log, "exited with status 3: broken pipe"), 1, "run {run}: {log:?}");
        assert_eq!(count(&log, "SIGPIPE caught"), 0);
    }
}

#[test]
fn default_mode_lets_sigpipe_kill_the_child() {
    for run in 0..RUNS {
        let log = recipe("default");
        assert_eq!(count(&log, "killed by signal 13 (SIGPIPE)"), 1, "run {run}: {log:?}");
        // Killed in the middle of its write: the child logged nothing after it.
        assert_eq!(count(&log, "finished:"), 0, "run {run}: {log:?}");
    }
}
