//! Where the benchmark's connections go: a loopback of its own when it can.
//!
//! The suite opens hundreds of thousands of connections in a few minutes.
//! When the machine's firewall tracks connections (Docker's NAT rules turn
//! `nf_conntrack` on, loopback included), each of them stays in the kernel's
//! table for two minutes after it closes; once the table is full the kernel
//! drops new SYNs ("nf_conntrack: table full, dropping packet" in dmesg),
//! and a server looks as if it had stopped accepting. Seen here: with
//! Docker's rules in place and a table of 262,144 entries, a prefork run
//! of 3 connections in 3 s, two minutes into the suite.
//!
//! So, as root, the benchmark moves into a network namespace of its own
//! (`unshare --net`, as `ip netns` does): a loopback with no firewall
//! rules, hence nothing tracked, and the same TCP code as the machine's.
//! Without root, it stays on the machine's loopback and the report says
//! whether connection tracking is on there.

use std::fs::{self, File};
use std::process::{Command, Stdio};

use nix::sched::{setns, unshare, CloneFlags};

/// Moves this process, and everything it starts later, into a new network
/// namespace with its loopback up, if it can; returns a line for the
/// report saying where the connections went. Call it before any thread is
/// started: a namespace belongs to the thread that enters it.
pub fn own_loopback() -> String {
    let Ok(original) = File::open("/proc/self/ns/net") else { return machine_loopback() };
    if unshare(CloneFlags::CLONE_NEWNET).is_err() {
        return machine_loopback();
    }
    let up = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if up.is_ok_and(|status| status.success()) {
        return "a network namespace of its own (its own loopback, no firewall, no connection tracking)"
            .to_string();
    }
    // No `ip` to bring the new loopback up: back to the machine's.
    if setns(original, CloneFlags::CLONE_NEWNET).is_err() {
        return "a network namespace whose loopback could not be brought up".to_string();
    }
    machine_loopback()
}

/// The machine's loopback, and whether connections on it are tracked.
fn machine_loopback() -> String {
    let read = |name: &str| fs::read_to_string(format!("/proc/sys/net/netfilter/{name}")).ok();
    match (read("nf_conntrack_count"), read("nf_conntrack_max")) {
        (Some(count), Some(max)) => format!(
            "the machine's loopback, with connection tracking on (nf_conntrack: {} of {} entries used at the start); \
             a full table drops SYNs, run as root to measure in a namespace of its own",
            count.trim(),
            max.trim()
        ),
        _ => "the machine's loopback".to_string(),
    }
}
