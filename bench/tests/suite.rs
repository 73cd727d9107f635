//! A smoke run of the benchmark: one short run of each test against every
//! server model (and the C baseline where a C compiler is installed). It
//! must finish and find no wrong echo. The figures themselves belong to
//! `make bench`, not to tests.

use std::path::Path;
use std::process::Command;

use testbed::*;

const BENCH: &str = env!("CARGO_BIN_EXE_echobench");

/// The server the benchmark measures: the one cargo built beside this
/// test (`cargo test --workspace` builds every package first; alone,
/// `cargo test -p echobench` wants `cargo build -p tcpechod` first).
fn server_built() {
    assert!(Path::new(&*SERVER).is_file(), "{SERVER} is missing: build the server first (make)");
}

#[test]
fn the_benchmark_runs_every_model_and_checks_every_echo() {
    server_built();
    let mut command = Command::new(BENCH);
    command.args(["suite", "--quick", "--server", &SERVER]);
    let dir = std::env::temp_dir().join(format!("tcpechod-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c_server = dir.join("forkechod");
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/forkechod.c");
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
    for model in modes().chain(["fork --splice"]) {
        assert!(table.contains(&format!("| {model} |")), "{model} measured:\n{table}");
    }
    if compiled {
        assert!(table.contains("| C fork (cc -O2) |"), "{table}");
    }
    let results = std::fs::read_to_string(dir.join("RESULTS.md")).unwrap();
    assert!(results.contains("0 failed connections, 0 wrong echoes"), "{results}");
    // As root it measures on a loopback of its own, out of reach of the
    // machine's connection tracking.
    let own = "Network: a network namespace of its own";
    assert_eq!(results.contains(own), is_root() && have("ip"), "{results}");
    let chart = std::fs::read_to_string(dir.join("rate.svg")).unwrap();
    assert!(chart.starts_with("<svg") && chart.contains("poll"), "a chart with every model");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A stand-in "C server" that announces a port where nothing listens and
/// then sleeps: every measurement against it fails. Writes its PID into
/// `dir/pid`.
fn fake_server(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let script = dir.join("fake-server.sh");
    let text = format!(
        "#!/bin/sh\necho $$ > '{}'\necho 'listening on 127.0.0.1:{port}' >&2\nexec sleep 600\n",
        dir.join("pid").display()
    );
    std::fs::write(&script, text).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn a_failed_benchmark_leaves_no_server_behind() {
    server_built();
    let dir = std::env::temp_dir().join(format!("tcpechod-bench-fail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = fake_server(&dir);
    let out = run_bounded(
        Command::new(BENCH).args(["suite", "--quick", "--server", &SERVER]).arg("--c-server").arg(&fake),
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr_text(&out));
    let pid: i32 = std::fs::read_to_string(dir.join("pid")).unwrap().trim().parse().unwrap();
    assert!(Proc::read(pid).is_none(), "the failed server {pid} was stopped and reaped");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_interrupted_benchmark_leaves_no_server_behind() {
    server_built();
    let mut bench = KillOnDrop(
        Command::new(BENCH)
            .args(["suite", "--quick", "--server", &SERVER])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let pid = bench.0.id() as i32;
    // Its children that run the server (not `ip`, which it may run first).
    let server = std::fs::canonicalize(&*SERVER).unwrap();
    let servers = wait_until("a server under test", || {
        let servers: Vec<Proc> = children_of(pid)
            .into_iter()
            .filter(|p| std::fs::read_link(format!("/proc/{}/exe", p.pid)).is_ok_and(|exe| exe == server))
            .collect();
        (!servers.is_empty()).then_some(servers)
    });
    signal(pid, libc::SIGINT); // Ctrl-C
    wait_until("echobench to exit", || bench.0.try_wait().unwrap());
    for server in servers {
        wait_until("the server and its children to go", || {
            processes_in_group(server.pid).is_empty().then_some(())
        });
    }
}

#[test]
fn the_scaling_run_holds_every_model_s_clients_and_writes_its_report() {
    server_built();
    let dir = std::env::temp_dir().join(format!("tcpechod-scale-{}", std::process::id()));
    let out = run_bounded(
        Command::new(BENCH).args(["scale", "--quick", "--server", &SERVER]).arg("--out").arg(&dir),
        b"",
    );
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}\n{report}", stderr_text(&out));
    let written = std::fs::read_to_string(dir.join("SCALING.md")).unwrap();
    assert!(written.contains("Linux"), "the report names the kernel:\n{written}");
    // Every model but the iterative one holds 10 and then 50 clients, with
    // every echo checked and none failed; the iterative one serves one.
    let failures = written.split("**Failures: refused / reset / failed**").nth(1).unwrap();
    for model in modes().filter(|&m| m != "iterative") {
        assert!(failures.contains(&format!("| {model} | 0 / 0 / 0 | 0 / 0 / 0 |")), "{model}:\n{written}");
    }
    assert!(written.contains("- **iterative** stopped at 10 clients: 1 of 10 clients served"), "{written}");
    for chart in ["scale-memory.svg", "scale-latency.svg"] {
        let svg = std::fs::read_to_string(dir.join(chart)).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("poll") && svg.contains("fork"), "{chart}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
