//! Fuzzing the command lines of TCPechod and TCPecho: hundreds of random
//! argument lists made of options, flags, garbage values, huge numbers,
//! empty strings and bytes that are not UTF-8. Whatever they get, the
//! programs answer with exit status 1 or 2 and one line on stderr (or,
//! for a command line that happens to be valid, run normally): never a
//! panic or a backtrace, even with RUST_BACKTRACE set.
//!
//! TCPecho's host is always one that cannot send traffic anywhere but
//! loopback, and its port one where nothing listens.

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use testbed::*;

/// Values that options and ports get: good, bad, huge, odd.
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "2",
    "-1",
    "-0",
    "+3",
    " 5",
    "5 ",
    "07",
    "65535",
    "65536",
    "4096",
    "4097",
    "99999999999999999999999999",
    "-99999999999999999999",
    "1e3",
    "0x10",
    "1.5",
    "abc",
    "echo",
    "no-such-service",
    "٣",
    "--",
    "-",
    "-q",
    "fork",
    "thread",
    "poll",
    "prefork",
    "iterative",
    "count",
    "ignore",
    "default",
    "::",
    "0.0.0.0",
    "127.0.0.1",
    "256.1.1.1",
    "192.0.2.1",
    "::ffff:127.0.0.1",
];

/// A value, sometimes made of bytes that are not UTF-8, sometimes very long.
fn value(rng: &mut Rng) -> OsString {
    match rng.next_u64() % 12 {
        0 => OsString::from_vec(vec![0xff, b'1', 0xfe]),
        1 => OsString::from("9".repeat(5000)),
        _ => OsString::from(rng.pick(VALUES)),
    }
}

/// Runs a program with `args`; returns (exit status, stderr). A server
/// that starts (valid arguments) is stopped and reported as "started".
fn run(program: &str, args: &[OsString]) -> (Option<i32>, String) {
    let mut child = Command::new(program)
        .args(args)
        .env("RUST_BACKTRACE", "full")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let started = line.contains("listening on");
            text.push_str(&line);
            text.push('\n');
            if started {
                let _ = tx.send((true, text.clone()));
            }
        }
        let _ = tx.send((false, text));
    });
    let (started, text) = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
        signal(-pid, libc::SIGKILL);
        panic!("{program} {args:?} neither ended nor started");
    });
    if started {
        signal(-pid, libc::SIGKILL);
        let _ = child.wait();
        return (None, text);
    }
    let status = child.wait().unwrap();
    (status.code(), text)
}

fn check(program: &str, args: &[OsString], status: Option<i32>, stderr: &str) {
    let what = format!("{program} {args:?}: {stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "{what}");
    assert!(!stderr.contains("internal error"), "{what}");
    match status {
        None => assert!(stderr.starts_with("[parent "), "{what}"), // a valid server command line
        Some(0) => {}                                              // --help, --version
        Some(1 | 2) => assert_eq!(stderr.lines().count(), 1, "{what}"),
        Some(other) => panic!("exit status {other}: {what}"),
    }
}

#[test]
fn tcpechod_survives_random_command_lines() {
    let options = [
        "--bind",
        "--backlog",
        "--sigpipe",
        "--delay",
        "--grace",
        "--idle-timeout",
        "--max-children",
        "--mode",
        "--buffer",
    ];
    let flags = [
        "--no-reaper",
        "--no-sigterm-handler",
        "--splice",
        "-q",
        "--leak-asock",
        "--leak-msock",
        "--no-reuseaddr",
        "--quiet",
        "-x",
        "--frobnicate",
    ];
    let mut rng = Rng(0xC0FFEE);
    for _ in 0..250 {
        let mut args: Vec<OsString> = Vec::new();
        for _ in 0..(rng.next_u64() % 6) {
            match rng.next_u64() % 3 {
                0 => {
                    args.push(rng.pick(&options).into());
                    if rng.chance(9) {
                        args.push(value(&mut rng));
                    }
                }
                1 => args.push(rng.pick(&flags).into()),
                _ => {
                    // --workers only with small numbers: a valid large one forks that many.
                    args.push("--workers".into());
                    args.push(rng.pick(&["0", "1", "2", "-1", "abc", "", "1025", "9999999999"]).into());
                }
            }
        }
        if rng.chance(8) {
            args.push(value(&mut rng)); // the port
        }
        if rng.chance(1) {
            args.push(rng.pick(&["--help", "--version", "-h", "-V"]).into());
        }
        let (status, stderr) = run(&SERVER, &args);
        check("TCPechod", &args, status, &stderr);
    }
}

#[test]
fn tcpecho_survives_random_command_lines() {
    // A port where nothing listens: a valid command line fails to connect.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    // Hosts that cannot reach anything but loopback.
    let hosts = ["localhost", "127.0.0.1", "::1", "", "no such host", "bad%host", "\u{fffd}"];
    let options = ["--interval", "--hold"];
    let flags = ["--no-read", "-x", "--frobnicate", "-q"];
    let mut rng = Rng(0xBADC0DE);
    for _ in 0..250 {
        let mut args: Vec<OsString> = Vec::new();
        for _ in 0..(rng.next_u64() % 5) {
            if rng.chance(6) {
                args.push(rng.pick(&options).into());
                let mut v = value(&mut rng);
                if v == "--" {
                    v = "1".into(); // "--" would turn what follows into a host
                }
                args.push(v);
            } else {
                args.push(rng.pick(&flags).into());
            }
        }
        let host: OsString =
            if rng.chance(1) { OsString::from_vec(vec![0xff, b'h']) } else { rng.pick(&hosts).into() };
        args.push(host);
        if rng.chance(8) {
            args.push(if rng.chance(5) { closed.as_str().into() } else { value(&mut rng) });
        }
        if rng.chance(1) {
            args.push(rng.pick(&["--help", "--version"]).into());
        }
        let (status, stderr) = run(&CLIENT, &args);
        check("TCPecho", &args, status, &stderr);
        assert!(status.is_some(), "TCPecho does not start servers");
    }
}
