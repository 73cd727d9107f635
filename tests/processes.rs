//! The processes and descriptors of the fork server, observed in /proc:
//! zombies with and without the reaper, descriptors that do not leak, a
//! child that does not hold the master socket, and the children limit.

use std::io::{Read, Write};
use std::net::Shutdown;

use testbed::*;

/// Opens and finishes `count` short connections, one after another.
fn short_connections(server: &Server, count: usize) {
    for i in 0..count {
        let mut sock = server.connect();
        let msg = format!("connection {i}\n");
        sock.write_all(msg.as_bytes()).unwrap();
        sock.shutdown(Shutdown::Write).unwrap();
        let mut echo = String::new();
        sock.read_to_string(&mut echo).unwrap();
        assert_eq!(echo, msg);
    }
}

#[test]
fn with_the_reaper_no_zombie_is_left() {
    let mut server = Server::start(&["-q"]);
    short_connections(&server, 200);
    // Every child ends once its client has closed; the reaper collects each.
    server.wait_for_children(0, |_| true);
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    let summary = server.summary();
    assert_eq!((summary.accepted, summary.reaped, summary.killed), (200, 200, 0));
}

#[test]
fn without_the_reaper_children_stay_zombies_until_shutdown() {
    let mut server = Server::start(&["--no-reaper"]);
    short_connections(&server, 5);
    let zombies = server.wait_for_children(5, Proc::is_zombie);
    assert_eq!(server.children().len(), 5, "all five children are zombies: {zombies:?}");
    assert!(server.lines_with("reaped child").is_empty(), "nobody reaps them before shutdown");

    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert_eq!(server.lines_with("reaped child").len(), 5, "shutdown reaps them: {:?}", server.log);
    let summary = server.summary();
    assert_eq!((summary.accepted, summary.reaped, summary.killed), (5, 5, 0));
    for zombie in zombies {
        assert!(Proc::read(zombie.pid).is_none(), "{} is gone", zombie.pid);
    }
}

#[test]
fn parent_descriptors_do_not_grow() {
    let server = Server::start(&["-q"]);
    short_connections(&server, 1); // let lazily opened descriptors appear
    server.wait_for_children(0, |_| true);
    let before = server.fd_count();
    short_connections(&server, 200);
    server.wait_for_children(0, |_| true);
    assert_eq!(server.fd_count(), before, "the parent closes every asock");
}

#[test]
fn a_child_does_not_hold_the_master_socket() {
    let mut server = Server::start(&[]);
    let listening = tcp_table()
        .into_iter()
        .find(|e| e.state == TCP_LISTEN && e.local_port == server.port)
        .expect("msock in /proc/net/tcp");
    let parent = Proc::read(server.pid).unwrap();
    assert!(parent.socket_inodes().contains(&listening.inode), "the parent holds msock");

    let mut sock = server.connect();
    sock.write_all(b"ping\n").unwrap();
    let mut buf = [0u8; 5];
    sock.read_exact(&mut buf).unwrap();
    let children = server.wait_for_children(1, |_| true);
    let child_sockets = children[0].socket_inodes();
    assert_eq!(child_sockets.len(), 1, "the child holds asock only: {child_sockets:?}");
    assert!(!child_sockets.contains(&listening.inode), "the child closed msock");
    let accepted =
        tcp_table().into_iter().find(|e| e.inode == child_sockets[0]).expect("asock in /proc/net/tcp");
    assert_eq!((accepted.state, accepted.local_port), (TCP_ESTABLISHED, server.port));
    assert!(server
        .wait_for_line(|l| l.contains("closed msock"))
        .starts_with(&format!("[child {}]", children[0].pid)));
}

#[test]
fn at_max_children_the_parent_waits_for_a_child_to_exit() {
    let mut server = Server::start(&["--max-children", "2"]);
    let mut open: Vec<_> = (0..2).map(|_| server.served_client()).collect();
    server.wait_for_line(|l| l.contains("max-children 2 reached"));

    // A third client completes its handshake (the kernel does that) but is
    // not accepted: no echo comes back while two children are alive.
    // not accepted: it waits in msock's queue (rx_queue of a LISTEN socket).
    let mut third = server.connect();
    third.write_all(b"third\n").unwrap();
    wait_until("the third connection in the accept queue", || {
        tcp_table()
            .into_iter()
            .find(|e| e.state == TCP_LISTEN && e.local_port == server.port && e.rx_queue == 1)
    });
    assert_eq!(server.children().len(), 2);

    // One child exits: the third client is accepted and served.
    drop(open.remove(0));
    let mut buf = [0u8; 6];
    third.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"third\n");
    server.wait_for_lines(3, |l| l.contains("forked child"));
    let position = |text: &str| server.log.iter().position(|l| l.contains(text)).unwrap();
    let third_fork = server.log.iter().rposition(|l| l.contains("forked child")).unwrap();
    assert!(
        position("reaped child") < third_fork,
        "accepted only after a child was reaped: {:?}",
        server.log
    );

    // The limit is reached again (two children alive), then everything ends.
    drop(open);
    drop(third);
    assert_eq!(server.stop_with(libc::SIGTERM).code(), Some(0));
    assert_eq!(server.lines_with("max-children 2 reached").len(), 1, "logged once: {:?}", server.log);
    assert_eq!(server.summary().reaped, 3);
}
