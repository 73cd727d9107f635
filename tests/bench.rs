//! A smoke run of the benchmark: one short run of each test against every
//! server model (and the C baseline where a C compiler is installed). It
//! must finish and find no wrong echo. The figures themselves belong to
//! `make bench`, not to tests.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const BENCH: &str = env!("CARGO_BIN_EXE_echobench");

#[test]
fn the_benchmark_runs_every_model_and_checks_every_echo() {
    let mut command = Command::new(BENCH);
    command.args(["suite", "--quick", "--server", SERVER]);
    let dir = std::env::temp_dir().join(format!("tcpechod-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c_server = dir.join("forkechod");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/c/forkechod.c");
    let compiled = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&c_server)
        .arg(&source)
        .status()
        .is_ok_and(|s| s.success());
    if compiled {
        command.arg("--c-server").arg(&c_server);
    } else {
        eprintln!("no C compiler: the C baseline is left out of the smoke run");
    }
    command.arg("--out").arg(&dir);
    let out = run_bounded(&mut command, b"");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}\n{table}", stderr_text(&out));
    for model in ["iterative", "fork", "fork --splice", "prefork", "thread", "poll"] {
        assert!(table.contains(&format!("| {model} |")), "{model} measured:\n{table}");
    }
    if compiled {
        assert!(table.contains("| C fork (cc -O2) |"), "{table}");
    }
    let results = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap();
    assert!(results.contains("0 failed connections, 0 wrong echoes"), "{results}");
    let chart = std::fs::read_to_string(dir.join("rate.svg")).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("poll"), "a chart with every model");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn echobench_rejects_bad_arguments() {
    let out = run_bounded(Command::new(BENCH).args(["rate", "127.0.0.1", "99999"]), b"");
    assert_one_line_error(&out, 2, "echobench", &["out of range"]);
    let out = run_bounded(Command::new(BENCH).args(["rate", "-c", "0", "127.0.0.1", "8000"]), b"");
    assert_one_line_error(&out, 2, "echobench", &["--concurrency", "from 1 to 1024"]);
    let out = run_bounded(Command::new(BENCH).args(["stream"]), b"");
    assert_one_line_error(&out, 2, "echobench", &["required"]);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let out = run_bounded(Command::new(BENCH).args(["rate", "-t", "1", "-q", "127.0.0.1", &port]), b"");
    assert_one_line_error(&out, 1, "echobench", &["connections failed"]);
}
