//! What the server's log lines say, read back: the port of `listening on`,
//! the summary of a graceful shutdown, the bytes each client had echoed.

use std::collections::{HashMap, HashSet};

pub use tcpechod::server::summary::Summary;

/// The port of a `... listening on ADDR:PORT` line (TCPechod's first line,
/// and the C baseline's); None for any other line.
pub fn listening_port(line: &str) -> Option<u16> {
    let addr = &line[line.find("listening on ")? + "listening on ".len()..];
    addr.trim().rsplit(':').next()?.parse().ok()
}

/// Reads `[parent N] shutdown: accepted=A reaped=R sigpipe=S cut=C killed=K`;
/// None for any other line.
pub fn parse_summary(line: &str) -> Option<Summary> {
    line.contains("shutdown: ").then_some(())?;
    let field = |name: &str| -> Option<u64> {
        let start = line.find(&format!(" {name}="))? + name.len() + 2;
        line[start..].split_whitespace().next()?.parse().ok()
    };
    Some(Summary {
        accepted: field("accepted")?,
        reaped: field("reaped")?,
        sigpipe: field("sigpipe")?,
        cut: field("cut")?,
        killed: field("killed")?,
    })
}

/// The numbers that follow each `prefix` in `text`.
pub fn numbers_after(text: &str, prefix: &str) -> HashSet<u32> {
    text.match_indices(prefix)
        .filter_map(|(at, _)| {
            let rest = &text[at + prefix.len()..];
            let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .collect()
}

/// The bytes the server says it echoed to each client, by the client's
/// port, read from its log: the `finished: N bytes echoed` line of the
/// child, worker, thread or process that served it, matched to the
/// `accepted ADDR` (or `serving ADDR`) line before it.
pub fn echoed_by_client(log: &[String]) -> HashMap<u16, u64> {
    let port_of =
        |addr: &str| addr.rsplit(':').next().and_then(|p| p.trim_end_matches(',').parse::<u16>().ok());
    let number_before = |text: &str, word: &str| -> Option<u64> {
        let before = &text[..text.find(word)?];
        before.split_whitespace().last()?.parse().ok()
    };
    let mut serving: HashMap<String, u16> = HashMap::new();
    let mut echoed = HashMap::new();
    for line in log {
        let Some(end) = line.find("] ") else { continue };
        let (tag, text) = (&line[..=end], &line[end + 2..]);
        let words: Vec<&str> = text.split_whitespace().collect();
        if let Some(rest) = text.strip_prefix("accepted ").or_else(|| text.strip_prefix("serving ")) {
            let Some(port) = rest.split_whitespace().next().and_then(port_of) else { continue };
            match words.iter().position(|w| *w == "child") {
                Some(i) if i > 0 && words[i - 1] == "forked" && i + 1 < words.len() => {
                    serving.insert(format!("[child {}]", words[i + 1]), port);
                }
                _ => {
                    serving.insert(tag.to_string(), port);
                }
            }
        } else if let Some(rest) = text.strip_prefix("finished ") {
            // The poll server: "finished ADDR: N bytes echoed (...)".
            let (addr, rest) = rest.split_once(": ").unwrap_or(("", ""));
            if let (Some(port), Some(n)) = (port_of(addr), number_before(rest, " bytes echoed")) {
                echoed.insert(port, n);
            }
        } else if let Some(rest) = text.strip_prefix("finished: ") {
            if let (Some(&port), Some(n)) = (serving.get(tag), number_before(rest, " bytes echoed")) {
                echoed.insert(port, n);
            }
        }
    }
    echoed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_is_read_from_the_listening_line_only() {
        assert_eq!(listening_port("[parent 7] listening on 127.0.0.1:8123"), Some(8123));
        assert_eq!(listening_port("listening on [::]:80\n"), Some(80));
        assert_eq!(listening_port("[parent 7] accepted 127.0.0.1:5000"), None);
    }

    #[test]
    fn the_summary_is_read_field_by_field() {
        let line = "[parent 9] shutdown: accepted=3 reaped=2 sigpipe=1 cut=0 killed=4";
        let summary = Summary { accepted: 3, reaped: 2, sigpipe: 1, cut: 0, killed: 4 };
        assert_eq!(parse_summary(line), Some(summary));
        assert_eq!(parse_summary("[parent 9] status: children=1 zombies=0 accepted=1"), None);
    }

    #[test]
    fn each_client_gets_the_bytes_of_the_child_that_served_it() {
        let log: Vec<String> = [
            "[parent 1] accepted 127.0.0.1:4000 on fd 4, forked child 12",
            "[child 12] finished: 6 bytes echoed",
            "[parent 1] finished 127.0.0.1:4001: 9 bytes echoed (end of file)",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(echoed_by_client(&log), HashMap::from([(4000, 6), (4001, 9)]));
    }
}
