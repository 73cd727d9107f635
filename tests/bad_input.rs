//! Bad input gets one clear line on stderr and a documented exit status
//! (2: usage, 1: run-time failure), never a panic, and nothing is left
//! running.

use std::ffi::OsStr;
use std::fs;
use std::net::TcpListener;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use testbed::*;

fn server(args: &[&str]) -> std::process::Output {
    run_bounded(Command::new(SERVER).args(args), b"")
}

fn client(args: &[&str]) -> std::process::Output {
    run_client(args, b"")
}

#[test]
fn server_rejects_bad_ports() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["no-such-service"], &["unknown service 'no-such-service'", "/etc/services"]),
        (&["70000"], &["port 70000 is out of range (0 to 65535)"]),
        (&["-1"], &["port -1 is out of range"]),
        (&["99999999999999999999999"], &["out of range"]),
        (&[""], &["a port cannot be empty"]),
        (&["8000", "9000"], &["unexpected argument '9000'"]),
    ];
    for (args, words) in cases {
        assert_one_line_error(&server(args), 2, "TCPechod", words);
    }
}

#[test]
fn server_rejects_bad_options() {
    let cases: &[(&[&str], &[&str])] = &[
        (&["--bind", "not-an-address", "0"], &["--bind", "not an IPv4 or IPv6 address"]),
        (&["--bind", "", "0"], &["--bind"]),
        (&["--bind", "224.0.0.1", "0"], &["224.0.0.1 is a multicast address", "cannot listen on it"]),
        (&["--bind", "255.255.255.255", "0"], &["255.255.255.255 is the broadcast address"]),
        (&["--bind", "ff02::1", "0"], &["ff02::1 is a multicast address"]),
        (
            &["--max-children", "0", "0"],
            &["'0' for '--max-children <N>'", "expected a whole number from 1 to 4194304"],
        ),
        (&["--max-children", "-3", "0"], &["'-3' for '--max-children <N>'", "from 1 to 4194304"]),
        (&["--max-children", "5000000", "0"], &["'5000000' for '--max-children <N>'", "from 1 to 4194304"]),
        (&["--backlog", "0", "0"], &["'0' for '--backlog <N>'", "from 1 to 4096"]),
        (&["--grace", "-1", "0"], &["'-1' for '--grace <SECS>'", "from 0 to 3600"]),
        (&["--grace", "99999999999999999999", "0"], &["--grace", "from 0 to 3600"]),
        (&["--delay", "soon", "0"], &["'soon' for '--delay <MS>'", "from 0 to 60000"]),
        (&["--sigpipe", "loudly", "0"], &["'loudly' for '--sigpipe <MODE>'", "default, ignore, count"]),
        (&["--sigpipe"], &["--sigpipe"]),
        (&["--no-such-option", "0"], &["--no-such-option"]),
        (&["--library-handler", "twice", "0"], &["'twice' for '--library-handler <MODE>'", "replace, chain"]),
        (&["--library-handler"], &["--library-handler"]),
        (&["--atexit=yes", "0"], &["--atexit"]),
    ];
    for (args, words) in cases {
        assert_one_line_error(&server(args), 2, "TCPechod", words);
    }
}

#[test]
fn non_utf8_arguments_are_a_usage_error() {
    let bad = OsStr::from_bytes(b"80\xff0");
    let out = run_bounded(Command::new(SERVER).arg(bad), b"");
    assert_one_line_error(&out, 2, "TCPechod", &["UTF-8"]);
    let out = run_bounded(Command::new(CLIENT).args([OsStr::new("localhost"), bad]), b"");
    assert_one_line_error(&out, 2, "TCPecho", &["UTF-8"]);
}

#[test]
fn server_reports_a_port_in_use() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let out = server(&["--bind", "127.0.0.1", &port]);
    assert_one_line_error(
        &out,
        1,
        "TCPechod",
        &[&format!("cannot bind 127.0.0.1:{port}"), &format!("port {port} is already in use")],
    );
    // A second server on the same port as a running one fails the same way.
    let running = Server::start(&["-q"]);
    let out = server(&["--bind", "127.0.0.1", &running.port.to_string()]);
    assert_one_line_error(&out, 1, "TCPechod", &["already in use"]);
}

#[test]
fn server_reports_an_address_that_is_not_ours() {
    // 192.0.2.1 is TEST-NET-1: never an address of this machine. bind fails
    // before anything is sent.
    let out = server(&["--bind", "192.0.2.1", "0"]);
    assert_one_line_error(
        &out,
        1,
        "TCPechod",
        &["cannot bind 192.0.2.1:0", "not an address of this machine"],
    );
}

#[test]
fn server_explains_permission_denied_below_1024() {
    if !nix::unistd::geteuid().is_root() {
        let start: u32 = fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(1024);
        assert!(start > 1, "this machine lets anyone bind port 1: the case cannot be shown here");
        assert_one_line_error(&server(&["1"]), 1, "TCPechod", &["permission denied", "below 1024"]);
        return;
    }
    // As root, run the server as `nobody` in a fresh network namespace,
    // where the unprivileged port range starts at 1024 again.
    let binary = BinaryForAnyone::new("perm");
    let out = run_bounded(
        Command::new("unshare")
            .args(["--net", "--setuid", "65534", "--setgid", "65534", "--"])
            .arg(&binary.path)
            .arg("1"),
        b"",
    );
    assert_one_line_error(&out, 1, "TCPechod", &["cannot bind 0.0.0.0:1", "permission denied", "below 1024"]);
}

#[test]
fn client_rejects_bad_arguments() {
    let cases: &[(&[&str], u8, &[&str])] = &[
        (&["localhost", "no-such-service"], 2, &["unknown service 'no-such-service'"]),
        (&["localhost", "65536"], 2, &["out of range"]),
        (&["localhost", "-7"], 2, &["out of range"]),
        (&["--interval", "-5", "localhost", "8000"], 2, &["'-5' for '--interval <MS>'", "from 0 to 60000"]),
        (&["--interval", "later", "localhost", "8000"], 2, &["'later' for '--interval <MS>'"]),
        (
            &["--hold", "forever", "localhost", "8000"],
            2,
            &["'forever' for '--hold <SECS>'", "from 0 to 86400"],
        ),
        (&["--bogus"], 2, &["--bogus"]),
        (&["a", "8000", "extra"], 2, &["unexpected argument 'extra'"]),
        (&["", "8000"], 2, &["a host name cannot be empty"]),
    ];
    for (args, code, words) in cases {
        assert_one_line_error(&client(args), i32::from(*code), "TCPecho", words);
    }
}

#[test]
fn help_and_version_are_not_errors() {
    for program in [SERVER, CLIENT] {
        for flag in ["--help", "--version"] {
            let out = run_bounded(Command::new(program).arg(flag), b"");
            assert_eq!(out.status.code(), Some(0), "{program} {flag}");
            assert!(!out.stdout.is_empty());
        }
    }
}
