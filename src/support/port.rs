//! Port numbers and service names.
//!
//! Like the C programs of the lab, both `TCPechod` and `TCPecho` accept a
//! port as a number (`8000`) or as a service name (`echo`), which is looked
//! up in `/etc/services` the way `getservbyname(3)` does. Reading the file
//! ourselves keeps the lookup in safe Rust and lets the error say exactly
//! which name was not found.

use std::fs;

/// Where the service names live.
pub const SERVICES_FILE: &str = "/etc/services";

/// Turns a command-line port into a number: digits are a port number
/// (0 to 65535, where 0 asks the kernel for an ephemeral port), anything
/// else is a TCP service name from `/etc/services`. A leading `+` is
/// taken, as Rust's and clap's number parsers (and C's `atoi`) take it:
/// `+8000` is port 8000, as `--grace +5` is 5 seconds.
///
/// The error is one sentence, suitable after "invalid value 'X' for PORT:".
pub fn parse(text: &str) -> Result<u16, String> {
    if text.is_empty() {
        return Err("a port cannot be empty".to_string());
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match text.parse::<u16>() {
            Ok(port) => Ok(port),
            Err(_) => Err(format!("port {text} is out of range (0 to 65535)")),
        };
    }
    match fs::read_to_string(SERVICES_FILE) {
        Ok(services) => lookup_service(&services, text).ok_or_else(|| {
            format!("unknown service '{text}': not a port number and not a tcp service in {SERVICES_FILE}")
        }),
        Err(err) => Err(format!(
            "cannot look up service '{text}': {SERVICES_FILE}: {err} (give a port number instead)"
        )),
    }
}

/// Like [`parse`], for a port to connect to: 0, which only a server can
/// ask for (any free port), is refused.
pub fn parse_remote(text: &str) -> Result<u16, String> {
    match parse(text)? {
        0 => Err(format!(
            "port {text} cannot be connected to (0 only asks the kernel for a free port, for a server)"
        )),
        port => Ok(port),
    }
}

/// Finds the TCP port of `name` in the text of a services file, whose lines
/// read `name  port/protocol  [aliases...]  [# comment]`.
fn lookup_service(services: &str, name: &str) -> Option<u16> {
    services.lines().find_map(|line| {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let official = fields.next()?;
        let (port, protocol) = fields.next()?.split_once('/')?;
        let named = official == name || fields.any(|alias| alias == name);
        if named && protocol == "tcp" {
            port.parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment line
echo\t\t7/tcp
echo\t\t7/udp
http\t\t80/tcp\t\twww\t\t# WorldWideWeb HTTP
syslog\t\t514/udp
";

    #[test]
    fn numbers_are_ports() {
        assert_eq!(parse("8000"), Ok(8000));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("65535"), Ok(65535));
        assert_eq!(parse("+9163"), Ok(9163));
    }

    #[test]
    fn a_client_cannot_connect_to_port_0() {
        assert_eq!(parse_remote("8000"), Ok(8000));
        for zero in ["0", "+0", "000"] {
            assert!(parse_remote(zero).unwrap_err().contains("cannot be connected to"), "{zero}");
        }
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        for bad in ["65536", "-1", "99999999999999999999"] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("out of range"), "{bad}: {err}");
        }
        assert!(parse("").unwrap_err().contains("empty"));
        for sign in ["+", "-"] {
            assert!(parse(sign).unwrap_err().contains("unknown service"), "{sign}");
        }
    }

    #[test]
    fn services_are_found_by_name_and_alias_for_tcp_only() {
        assert_eq!(lookup_service(SAMPLE, "echo"), Some(7));
        assert_eq!(lookup_service(SAMPLE, "www"), Some(80));
        assert_eq!(lookup_service(SAMPLE, "syslog"), None);
        assert_eq!(lookup_service(SAMPLE, "comment"), None);
        assert_eq!(lookup_service(SAMPLE, "WorldWideWeb"), None);
    }
}
