//! Echo integrity: what TCPecho sends through TCPechod comes back byte for
//! byte, for text, for large random data, and for many clients at once.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::thread;

use testbed::*;

#[test]
fn a_line_of_text_comes_back() {
    let mut server = Server::start(&[]);
    let out = server.client(&[], b"hello, concurrent world\n");
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"hello, concurrent world\n");
    assert_eq!(stderr_text(&out), "", "nothing on stderr when all goes well");

    server.wait_for_line(|l| l.contains("reaped child"));
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    let child_line = server.lines_with("finished: 24 bytes echoed");
    assert_eq!(child_line.len(), 1, "the child reports the bytes it echoed: {:?}", server.log);
    assert!(child_line[0].starts_with("[child "));
}

#[test]
fn sixteen_mib_of_random_bytes_come_back_intact() {
    let mut server = Server::start(&["-q"]);
    let data = random_bytes(16 * 1024 * 1024);
    let out = server.client(&[], &data);
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(out.stdout.len(), data.len());
    assert!(out.stdout == data, "echo differs from what was sent");
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    // -q: only the first line and the summary.
    assert_eq!(server.log.len(), 2, "{:?}", server.log);
}

#[test]
fn long_lines_and_every_byte_value_survive_interval_mode() {
    let server = Server::start(&["-q"]);
    // A 300 KiB line with no newline, then every byte value, then a short line.
    let mut data = vec![b'x'; 300 * 1024];
    data.extend(0u8..=255);
    data.extend_from_slice(b"\nlast line without newline");
    let out = server.client(&["--interval", "1"], &data);
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(out.stdout == data);
}

#[test]
fn empty_input_is_a_clean_run() {
    let mut server = Server::start(&[]);
    let out = server.client(&[], b"");
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(out.stdout.is_empty());
    server.wait_for_line(|l| l.contains("finished: 0 bytes echoed"));
}

#[test]
fn fifty_concurrent_clients_are_all_served() {
    let mut server = Server::start(&["-q"]);
    let port = server.port.to_string();
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let port = port.clone();
            thread::spawn(move || {
                let data = format!("client {i}: ")
                    .into_bytes()
                    .into_iter()
                    .chain(random_bytes(10_000 + i))
                    .collect::<Vec<_>>();
                let out = run_client(&["127.0.0.1", &port], &data);
                (out.status.success() && out.stdout == data, stderr_text(&out))
            })
        })
        .collect();
    for (i, client) in clients.into_iter().enumerate() {
        let (ok, err) = client.join().expect("client thread");
        assert!(ok, "client {i} was not echoed correctly: {err}");
    }
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    let summary = server.summary();
    assert_eq!(summary.accepted, 50);
    assert_eq!(summary.reaped, 50);
}

#[test]
fn clients_are_served_at_the_same_time() {
    // Two clients with a slow server: the second is echoed while the first
    // still holds its connection open, which an iterative server cannot do.
    let mut server = Server::start(&["--delay", "50"]);
    let mut first = server.connect();
    first.write_all(b"first\n").unwrap();
    let mut buf = [0u8; 6];
    first.read_exact(&mut buf).unwrap();
    let forked = server.wait_for_line(|l| l.contains("forked child"));
    let first_child: i32 = forked.rsplit(' ').next().unwrap().parse().unwrap();

    let out = server.client(&[], b"second\n");
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"second\n");
    let still = Proc::read(first_child).expect("the first client's child is still there");
    assert!(still.ppid == server.pid && !still.is_zombie(), "and still serving: {still:?}");
    first.shutdown(Shutdown::Write).unwrap();
    assert_eq!(first.read(&mut buf).unwrap(), 0, "the first child closes after EOF");
    server.wait_for_lines(2, |l| l.contains("reaped child"));
}

#[test]
fn dual_stack_server_answers_ipv6_and_ipv4() {
    let server = Server::start_raw(&["--bind", "::", "0"]);
    assert!(server.log[0].contains("listening on [::]:"), "{}", server.log[0]);
    let port = server.port.to_string();
    for host in ["::1", "127.0.0.1"] {
        let out = run_client(&[host, &port], b"both families\n");
        assert!(out.status.success(), "{host}: {}", stderr_text(&out));
        assert_eq!(out.stdout, b"both families\n");
    }
}

#[test]
fn client_tries_every_address_of_a_name() {
    // localhost is ::1 and 127.0.0.1; the server listens on IPv4 only, so
    // the client must go on to the next address when the first is refused.
    let server = Server::start(&["-q"]);
    let out = run_client(&["localhost", &server.port.to_string()], b"by name\n");
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert_eq!(out.stdout, b"by name\n");
}

#[test]
fn client_reports_refused_connection() {
    // Bind a port, remember it, free it: nobody listens there now.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let out = run_client(&["127.0.0.1", &port], b"x");
    assert_one_line_error(
        &out,
        1,
        "TCPecho",
        &[&format!("cannot connect to 127.0.0.1:{port}: Connection refused")],
    );
}

#[test]
fn client_reports_unresolvable_host() {
    let out = run_client(&["no-such-host.invalid", "8000"], b"x");
    assert_one_line_error(&out, 1, "TCPecho", &["cannot resolve no-such-host.invalid"]);
}

#[test]
fn client_reports_a_short_echo() {
    // A broken "echo server": reads 20 bytes, echoes 10 and closes.
    let (port, served) = one_shot_server(|mut sock| {
        let mut buf = [0u8; 20];
        sock.read_exact(&mut buf).unwrap();
        sock.write_all(&buf[..10]).unwrap();
        // Wait for the client's half-close so that closing sends FIN, not RST.
        let _ = sock.read(&mut buf);
    });
    let out = run_client(&["127.0.0.1", &port], b"0123456789abcdefghij");
    served.recv_timeout(TIMEOUT).expect("the broken server ran");
    assert_eq!(out.stdout, b"0123456789");
    assert_one_line_error(&out, 1, "TCPecho", &["server closed the connection after 10 of 20 bytes"]);
}

#[test]
fn no_read_sends_everything_and_reads_nothing() {
    let (port, received) = one_shot_server(|mut sock| {
        let mut all = Vec::new();
        sock.read_to_end(&mut all).unwrap();
        all
    });
    let out = run_client(&["--no-read", "127.0.0.1", &port], b"fire and forget\n");
    assert!(out.status.success(), "{}", stderr_text(&out));
    assert!(out.stdout.is_empty());
    assert_eq!(received.recv_timeout(TIMEOUT).expect("data received"), b"fire and forget\n");
}

#[test]
fn hold_keeps_an_established_connection_open() {
    let server = Server::start(&["-q"]);
    let mut client = KillOnDrop(
        std::process::Command::new(CLIENT)
            .args(["--hold", "60", "127.0.0.1", &server.port.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The client says which ephemeral port it holds the connection from.
    let mut stderr = std::io::BufReader::new(client.0.stderr.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).unwrap();
    assert!(line.starts_with("TCPecho: holding the connection 127.0.0.1:"), "{line}");
    let local_port: u16 = line.split(':').nth(2).and_then(|p| p.split(' ').next()).unwrap().parse().unwrap();
    let established = tcp_table()
        .into_iter()
        .filter(|e| e.state == TCP_ESTABLISHED)
        .any(|e| e.local_port == local_port && e.remote_port == server.port);
    drop(client);
    assert!(established, "connection from port {local_port} is ESTABLISHED while held");
}
