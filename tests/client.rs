//! TCPecho's graceful end: SIGTERM or SIGINT in the middle of a transfer,
//! during an `--interval` or a `--hold`, against a server that never
//! echoes; a second signal; and its new options' bad values.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::thread;

use testbed::*;

/// TCPecho with `args` against `port`, stdin, stdout and stderr piped.
fn client(args: &[&str], port: &str) -> KillOnDrop {
    KillOnDrop::spawn(Command::new(CLIENT).args(args).args(["127.0.0.1", port]))
}

#[test]
fn sigterm_cuts_an_interval_short_and_ends_gracefully() {
    let server = Server::start(&["-q"]);
    let port = server.port.to_string();
    // The second line would go out a minute after the first: the test's
    // waits end long before that, so only the signal can end the client.
    let mut tcpecho = client(&["--interval", "60000"], &port);
    let mut stdin = tcpecho.0.stdin.take().unwrap();
    stdin.write_all(b"first\nsecond\n").unwrap();
    let mut stdout = BufReader::new(tcpecho.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line, "first\n", "the first line came back");
    signal(tcpecho.0.id() as i32, libc::SIGTERM);
    let (code, err) = tcpecho.end();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, "", "nothing more came back: the second line was never sent");
    assert_eq!(code, Some(0), "{err}");
    let pid = tcpecho.0.id();
    for expected in [
        format!("[client {pid}] SIGTERM received: no more input is sent"),
        format!("[client {pid}] sent 6 bytes, and all 6 came back"),
        format!("[client {pid}] joined the reader thread"),
        format!("[client {pid}] closed the socket (fd "),
        format!("[client {pid}] closed the wake pipe (fds "),
    ] {
        assert!(err.contains(&expected), "{expected:?} in:\n{err}");
    }
    drop(stdin);
}

#[test]
fn sigint_cuts_a_hold_short() {
    let server = Server::start(&["-q"]);
    let mut tcpecho = client(&["--hold", "600"], &server.port.to_string());
    tcpecho.0.stdin.take().unwrap().write_all(b"held\n").unwrap();
    let mut stderr = BufReader::new(tcpecho.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.starts_with("TCPecho: holding the connection"), "{line}");
    signal(tcpecho.0.id() as i32, libc::SIGINT);
    let status = wait_until("TCPecho to exit", || tcpecho.0.try_wait().unwrap());
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("SIGINT received") && err.contains("sent 5 bytes, and all 5 came back"), "{err}");
    let mut echo = String::new();
    tcpecho.0.stdout.take().unwrap().read_to_string(&mut echo).unwrap();
    assert_eq!(echo, "held\n");
}

/// A server that accepts one client and echoes nothing: the test reads
/// what the client sent when it chooses to.
struct MuteServer {
    listener: TcpListener,
    port: String,
}

impl MuteServer {
    fn new() -> MuteServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        MuteServer { listener, port }
    }

    /// The client's connection, once it came, with `bytes` sent and unread:
    /// the client is running, its handlers installed, its data out.
    fn client_sent(&self, bytes: u64) -> TcpStream {
        let sock = wait_until("the client", || self.listener.accept().ok().map(|(sock, _)| sock));
        let port: u16 = self.port.parse().unwrap();
        let client = sock.peer_addr().unwrap().port();
        wait_until("the data to reach the server", || {
            tcp_table()
                .into_iter()
                .find(|e| e.local_port == port && e.remote_port == client && e.rx_queue == bytes)
        });
        sock.set_nonblocking(false).unwrap();
        sock.set_read_timeout(Some(TIMEOUT)).unwrap();
        sock
    }
}

#[test]
fn without_the_echo_the_grace_period_ends_it_with_status_3() {
    let server = MuteServer::new();
    let mut tcpecho = client(&["--grace", "1"], &server.port);
    let mut stdin = tcpecho.0.stdin.take().unwrap();
    stdin.write_all(b"never echoed\n").unwrap();
    let mut sock = server.client_sent(13);
    signal(tcpecho.0.id() as i32, libc::SIGTERM);
    let (code, err) = tcpecho.end();
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("sent 13 bytes; 0 came back, 13 had not within the grace period of 1 s"), "{err}");
    assert!(err.contains("closed the socket (fd "), "{err}");
    // The data, then the client's FIN (a read that ends): the half-close.
    let mut got = Vec::new();
    sock.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"never echoed\n");
    drop(stdin);
}

#[test]
fn a_second_signal_ends_it_at_once() {
    let server = MuteServer::new();
    let mut tcpecho = client(&["--grace", "600"], &server.port);
    let mut stdin = tcpecho.0.stdin.take().unwrap();
    stdin.write_all(b"x\n").unwrap();
    let _sock = server.client_sent(2);
    let mut stderr = BufReader::new(tcpecho.0.stderr.take().unwrap());
    let pid = tcpecho.0.id() as i32;
    signal(pid, libc::SIGTERM);
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap(); // it is in its grace period now
    assert!(line.contains("SIGTERM received"), "{line}");
    signal(pid, libc::SIGTERM);
    let status = wait_until("TCPecho to exit", || tcpecho.0.try_wait().unwrap());
    let mut err = String::new();
    stderr.read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{err}");
    assert!(err.contains("TCPecho: a second stop signal: ending at once"), "{err}");
    drop(stdin);
}

#[test]
fn a_stop_in_the_middle_of_a_stream_loses_and_repeats_nothing() {
    let server = Server::start(&["-q"]);
    let mut tcpecho = client(&[], &server.port.to_string());
    let mut stdin = tcpecho.0.stdin.take().unwrap();
    let feeder = thread::spawn(move || {
        let mut rng = Rng(7);
        let chunk = rng.bytes(64 * 1024);
        // Fed until the client stops reading its input (then the pipe breaks).
        for _ in 0..16 * 1024 {
            if stdin.write_all(&chunk).is_err() {
                break;
            }
        }
    });
    let mut stdout = tcpecho.0.stdout.take().unwrap();
    let expected = Rng(7).bytes(64 * 1024);
    let mut got: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let mut signalled = false;
    loop {
        let n = stdout.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        for (i, &byte) in buf[..n].iter().enumerate() {
            let at = ((got + i as u64) % expected.len() as u64) as usize;
            assert_eq!(byte, expected[at], "byte {} of the echo", got + i as u64);
        }
        got += n as u64;
        if !signalled && got > 4 << 20 {
            signal(tcpecho.0.id() as i32, libc::SIGTERM);
            signalled = true;
        }
    }
    let (code, err) = tcpecho.end();
    let _ = feeder.join();
    assert_eq!(code, Some(0), "{err}");
    let line = err.lines().find(|l| l.contains(" bytes, and all ")).unwrap_or_else(|| panic!("{err}"));
    assert!(
        line.ends_with(&format!("sent {got} bytes, and all {got} came back")),
        "{line} (stdout had {got})"
    );
}

#[test]
fn tcpecho_rejects_bad_values_of_its_new_options() {
    let cases: &[(&[&str], i32, &[&str])] = &[
        (&["--grace", "-1", "localhost", "8000"], 2, &["'-1' for '--grace <SECS>'", "from 0 to 3600"]),
        (&["--grace", "soon", "localhost", "8000"], 2, &["'soon' for '--grace <SECS>'"]),
        (&["--retry", "x", "localhost", "8000"], 2, &["'x' for '--retry <SECS>'"]),
        (&["--input"], 2, &["--input"]),
        (&["--input", "/no/such/file", "localhost", "8000"], 1, &["cannot open /no/such/file"]),
    ];
    for (args, code, words) in cases {
        assert_one_line_error(&run_client(args, b""), *code, "TCPecho", words);
    }
}
