//! What TCPecho checks, and when it stops: the server's close while the
//! input is quiet, a stop signal while it retries to connect, an echo that
//! changes the bytes, standard descriptors closed at start, an input that
//! cannot be read, a port it cannot connect to, and help that cannot be
//! written. Servers that must misbehave are sockets of the test itself.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};

use testbed::*;

/// TCPecho with `args`, stdin, stdout and stderr piped.
fn client(args: &[&str]) -> KillOnDrop {
    KillOnDrop::spawn(Command::new(CLIENT).args(args))
}

#[test]
fn the_servers_close_ends_the_client_while_its_input_is_quiet() {
    let mut server = Server::start(&["-q"]);
    let port = server.port.to_string();
    let mut tcpecho = client(&["127.0.0.1", &port]);
    // The input stays open and quiet: only the server's close can end it.
    let mut stdin = tcpecho.0.stdin.take().unwrap();
    stdin.write_all(b"a\n").unwrap();
    let mut line = String::new();
    BufReader::new(tcpecho.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "a\n");
    server.stop_with(libc::SIGTERM);
    let (code, err) = tcpecho.end();
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let expected = format!(
        "TCPecho: server 127.0.0.1:{port} closed the connection after echoing 2 of the 2 bytes sent; the rest of the input was not sent"
    );
    assert_eq!(err.trim_end(), expected);
    drop(stdin);
}

#[test]
fn the_servers_close_cuts_an_interval_short() {
    // The second line would go out a minute after the first.
    let mut server = Server::start(&["-q"]);
    let mut tcpecho = client(&["--interval", "60000", "127.0.0.1", &server.port.to_string()]);
    let mut stdin = tcpecho.0.stdin.take().unwrap();
    stdin.write_all(b"first\nsecond\n").unwrap();
    let mut line = String::new();
    BufReader::new(tcpecho.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "first\n");
    server.stop_with(libc::SIGTERM);
    let (code, err) = tcpecho.end();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("closed the connection after echoing 6 of the 6 bytes sent"), "{err}");
    drop(stdin);
}

#[test]
fn the_servers_close_cuts_a_hold_short() {
    // The input ended and all of it came back: the close ends the hold, and the run.
    let mut server = Server::start(&["-q"]);
    let mut tcpecho = client(&["--hold", "600", "127.0.0.1", &server.port.to_string()]);
    tcpecho.0.stdin.take().unwrap().write_all(b"held\n").unwrap();
    let mut stderr = BufReader::new(tcpecho.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("TCPecho: holding the connection"), "{line}");
    // The echo is back before the server stops (a stop ends its reading).
    let mut stdout = BufReader::new(tcpecho.0.stdout.take().unwrap());
    let mut echo = String::new();
    stdout.read_line(&mut echo).unwrap();
    assert_eq!(echo, "held\n");
    server.stop_with(libc::SIGTERM);
    let status = wait_until("TCPecho to exit", || tcpecho.0.try_wait().unwrap());
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert_eq!(err, "", "a clean end after the hold");
}

/// A TCP socket bound to a port of 127.0.0.1 that does not listen: a
/// connection to it is refused, and no other test can take the port.
fn refusing_port() -> (std::os::fd::OwnedFd, u16) {
    use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    bind(fd.as_raw_fd(), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    let port = getsockname::<SockaddrIn>(fd.as_raw_fd()).unwrap().port();
    (fd, port)
}

#[test]
fn a_stop_while_retrying_to_connect_exits_3() {
    let (_held, port) = refusing_port();
    let mut tcpecho = client(&["--retry", "600", "127.0.0.1", &port.to_string()]);
    let pid = tcpecho.0.id();
    // Its handler is in place: SIGTERM now asks, it does not kill.
    wait_until("TCPecho's SIGTERM handler", || catches(pid as i32, libc::SIGTERM).then_some(()));
    signal(pid as i32, libc::SIGTERM);
    let (code, err) = tcpecho.end();
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.contains(&format!("[client {pid}] stopped before the connection was made: nothing was sent")),
        "{err}"
    );
}

#[test]
fn port_0_is_a_usage_error_for_the_client() {
    for port in ["0", "+0"] {
        let out = run_client(&["--retry", "3600", "127.0.0.1", port], b"");
        assert_one_line_error(&out, 2, "TCPecho", &[&format!("port {port} cannot be connected to")]);
    }
}

#[test]
fn a_port_with_a_plus_sign_is_a_number() {
    let server = Server::start(&["-q"]);
    let out = run_client(&["127.0.0.1", &format!("+{}", server.port)], b"plus\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"plus\n");
}

/// A test-side echo server for one client that passes what it reads
/// through `change` (given the offset of the piece in the stream), and
/// writes it back in pieces of 1 to 19 bytes, so that the echo is cut
/// nowhere near where the client cut what it sent. Closes at end of file.
fn changing_server(change: fn(u64, &mut [u8])) -> String {
    let (port, _done) = one_shot_server(move |mut sock: TcpStream| {
        let mut buf = vec![0u8; 64 * 1024];
        let (mut offset, mut rng) = (0u64, Rng(99));
        loop {
            let n = match sock.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            change(offset, &mut buf[..n]);
            offset += n as u64;
            let mut piece = &buf[..n];
            while !piece.is_empty() {
                let len = (1 + rng.below(19) as usize).min(piece.len());
                if sock.write_all(&piece[..len]).is_err() {
                    return;
                }
                piece = &piece[len..];
            }
        }
    });
    port
}

#[test]
fn an_echo_that_changes_the_bytes_is_an_error() {
    let port = changing_server(|_, piece| piece.make_ascii_uppercase());
    let out = run_client(&["127.0.0.1", &port], b"hello world\n");
    assert_eq!(out.stdout, b"HELLO WORLD\n", "the echo is printed as it came");
    assert_one_line_error(
        &out,
        1,
        "TCPecho",
        &["the echo differs from what was sent (12 bytes sent, 12 came back): the server changed the bytes"],
    );
}

#[test]
fn one_changed_byte_in_megabytes_is_caught_and_an_intact_echo_passes() {
    const FLIPPED: u64 = 3_000_001;
    let input = Rng(5).bytes(4 << 20);
    let port = changing_server(|offset, piece| {
        if (offset..offset + piece.len() as u64).contains(&FLIPPED) {
            piece[(FLIPPED - offset) as usize] ^= 0x20;
        }
    });
    let out = run_client(&["127.0.0.1", &port], &input);
    assert_eq!(out.stdout.len(), input.len());
    let size = input.len();
    assert_one_line_error(&out, 1, "TCPecho", &[&format!("({size} bytes sent, {size} came back)")]);

    // The same cutting of the echo, no change: no complaint.
    let port = changing_server(|_, _| {});
    let out = run_client(&["127.0.0.1", &port], &input);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    assert!(out.stdout == input, "the echo is the input");
}

#[test]
fn a_changed_echo_is_an_error_after_a_stop_signal_too() {
    let port = changing_server(|_, piece| piece.make_ascii_uppercase());
    let mut tcpecho = client(&["127.0.0.1", &port]);
    let mut stdin = tcpecho.0.stdin.take().unwrap();
    stdin.write_all(b"abc\n").unwrap();
    let mut line = String::new();
    BufReader::new(tcpecho.0.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line, "ABC\n");
    signal(tcpecho.0.id() as i32, libc::SIGTERM);
    let (code, err) = tcpecho.end();
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("sent 4 bytes, and 4 came back, but not the bytes sent"), "{err}");
    assert!(
        err.lines().last().is_some_and(|l| l.starts_with("TCPecho: the echo differs from what was sent")),
        "{err}"
    );
    drop(stdin);
}

/// Runs TCPecho through `sh -c 'exec TCPecho ARGS REDIRECTION'`: the
/// shell closes a descriptor (`>&-`) before TCPecho starts.
fn with_redirection(redirection: &str, args: &[&str], input: &[u8]) -> std::process::Output {
    let script = format!("exec \"$0\" \"$@\" {redirection}");
    run_bounded(Command::new("sh").arg("-c").arg(script).arg(CLIENT).args(args), input)
}

#[test]
fn closed_standard_descriptors_are_refused_before_connecting() {
    let mut server = Server::start(&[]);
    let port = server.port.to_string();
    let args = ["127.0.0.1", port.as_str()];
    let out = with_redirection(">&-", &args, b"lost\n");
    assert_one_line_error(&out, 2, "TCPecho", &["standard output is closed"]);
    let out = with_redirection("<&-", &args, b"");
    assert_one_line_error(&out, 2, "TCPecho", &["standard input is closed"]);
    let out = with_redirection("2>&-", &args, b"unsaid\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    // /dev/null on purpose is fine, and so is no stdout with --no-read.
    let out = with_redirection(">/dev/null", &args, b"x\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    let out = with_redirection(">&-", &["--no-read", "127.0.0.1", &port], b"x\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr_text(&out));
    // Connections are accepted in the order they came: a refused run that
    // had connected would be accepted before these two.
    server.wait_for_lines(2, |l| l.contains("accepted"));
    server.stop_with(libc::SIGTERM);
    assert_eq!(server.summary().accepted, 2, "only the last two connected: {:?}", server.log);
}

#[test]
fn an_input_that_cannot_be_read_is_refused_before_connecting() {
    let mut server = Server::start(&[]);
    let port = server.port.to_string();
    let out = run_client(&["--input", "/no/such/file", "127.0.0.1", &port], b"");
    assert_one_line_error(&out, 1, "TCPecho", &["cannot open /no/such/file: No such file or directory"]);
    assert!(!stderr_text(&out).contains("os error"));
    let dir = std::env::temp_dir();
    let out = run_client(&["--input", dir.to_str().unwrap(), "127.0.0.1", &port], b"");
    assert_one_line_error(
        &out,
        1,
        "TCPecho",
        &[&format!("cannot read {}: it is a directory", dir.display())],
    );
    let mut tcpecho = KillOnDrop(
        Command::new(CLIENT)
            .args(["127.0.0.1", &port])
            .stdin(File::open(&dir).unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (code, err) = tcpecho.end();
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err, "TCPecho: cannot read standard input: it is a directory\n");
    // A good run last: connections are accepted in the order they came, so
    // a refused run that had connected would be accepted before it.
    assert_eq!(run_client(&["127.0.0.1", &port], b"ok\n").stdout, b"ok\n");
    server.wait_for_lines(1, |l| l.contains("accepted"));
    server.stop_with(libc::SIGTERM);
    assert_eq!(server.summary().accepted, 1, "only the good run connected: {:?}", server.log);
}

#[test]
fn help_and_version_that_cannot_be_written_are_a_failure() {
    for (program, name) in [(CLIENT, "TCPecho"), (SERVER, "TCPechod")] {
        for (flag, what) in [("--help", "the help"), ("--version", "the version")] {
            let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
            let mut child = KillOnDrop(
                Command::new(program).arg(flag).stdout(full).stderr(Stdio::piped()).spawn().unwrap(),
            );
            let (code, err) = child.end();
            assert_eq!(code, Some(1), "{name} {flag}: {err}");
            assert_eq!(
                err,
                format!("{name}: cannot write {what} to standard output: No space left on device\n"),
                "{name} {flag}"
            );
            let script = format!("exec \"$0\" {flag} >&-");
            let out = run_bounded(Command::new("sh").arg("-c").arg(script).arg(program), b"");
            assert_one_line_error(
                &out,
                1,
                name,
                &[&format!("cannot write {what}: standard output is closed")],
            );
        }
    }
}

#[test]
fn a_write_error_is_not_mistaken_for_a_closed_descriptor() {
    // The check of closed descriptors must not refuse a stdout that exists
    // but fails: that failure is reported when it happens.
    let server = Server::start(&["-q"]);
    let full = OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut tcpecho = KillOnDrop(
        Command::new(CLIENT)
            .args(["127.0.0.1", &server.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(full)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let _ = tcpecho.0.stdin.take().unwrap().write_all(b"to nowhere\n");
    let (code, err) = tcpecho.end();
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err, "TCPecho: cannot write to standard output: No space left on device\n");
}
