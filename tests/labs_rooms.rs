//! The lab in a shared room: many students on the lab machines, none of
//! them root. Each user of a machine and each machine of a room gets a port
//! of its own (labs/port.sh); the core's scripts run as an ordinary user,
//! exercise 2 included (in a private network namespace, or from a
//! recording where the kernel refuses that); a script run with sudo leaves
//! nothing of root's in the student's tree; and what a script lists is the
//! runner's own, never another user's processes.
//!
//! Other users are real ones: as root, the tests run things with setpriv
//! as another uid. A test that needs root fails under CI (which runs as
//! root) and, elsewhere, says why it skips.

use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use testbed::*;

/// The uid of an ordinary user that every Linux system has: nobody.
const NOBODY: u32 = 65534;

/// A copy of the lab's scripts (and recordings) that any user may read,
/// with the programs beside it, in a folder of its own that goes with the
/// value. Given an owner, everything in it is theirs, as a student's clone.
struct Tree {
    dir: PathBuf,
}

impl Tree {
    fn new(tag: &str) -> Tree {
        let dir = std::env::temp_dir().join(format!("tcpechod-rooms-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs");
        for sub in ["labs", "labs/recorded"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        for entry in fs::read_dir(&from).unwrap().chain(fs::read_dir(from.join("recorded")).unwrap()) {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".sh") {
                fs::copy(&path, dir.join("labs").join(&name)).unwrap();
            } else if path.parent().is_some_and(|p| p.ends_with("recorded")) {
                fs::copy(&path, dir.join("labs/recorded").join(&name)).unwrap();
            }
        }
        // Copies written and closed before anything runs them (no "Text
        // file busy": no other process holds a descriptor of these files).
        for (binary, name) in [(SERVER, "TCPechod"), (CLIENT, "TCPecho")] {
            fs::copy(binary, dir.join(name)).unwrap();
        }
        let tree = Tree { dir };
        tree.open_to_all(&tree.dir);
        tree
    }

    /// Folders and files readable (and programs runnable) by every user.
    fn open_to_all(&self, path: &Path) {
        let meta = fs::symlink_metadata(path).unwrap();
        if meta.is_dir() {
            fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
            for entry in fs::read_dir(path).unwrap() {
                self.open_to_all(&entry.unwrap().path());
            }
        } else if meta.is_file() {
            let mode = if meta.permissions().mode() & 0o111 != 0 { 0o755 } else { 0o644 };
            fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        }
    }

    /// Gives the whole tree to `uid` (its group too).
    fn give_to(&self, uid: u32) {
        let status = Command::new("chown").arg("-R").arg(format!("{uid}:{uid}")).arg(&self.dir).status();
        assert!(status.is_ok_and(|s| s.success()), "chown -R {uid} {:?}", self.dir);
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// A folder for a run's logs, owned by `uid`.
    fn out_for(&self, uid: u32) -> PathBuf {
        let out = self.dir.join(format!("out-{uid}"));
        fs::create_dir_all(&out).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&out, Some(uid), Some(uid)).unwrap();
        }
        out
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A command that runs as `uid` (with setpriv, as root), with no trace of
/// a sudo or of the tester's session in its environment.
fn as_user(uid: u32, program: &str) -> Command {
    let mut command = if is_root() && uid != 0 {
        let mut command = Command::new("setpriv");
        command.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups", "--", program]);
        command
    } else {
        Command::new(program)
    };
    for name in ["SUDO_UID", "SUDO_GID", "SUDO_USER", "XDG_RUNTIME_DIR", "LAB_PORT", "LC_ALL", "LC_MESSAGES"]
    {
        command.env_remove(name);
    }
    command.env("HOME", "/nonexistent").env("LANG", "C");
    command
}

/// A lab script of `tree` as `uid`, in `lang`, with the copied programs
/// and its logs in a folder of that user.
fn lab_as(tree: &Tree, uid: u32, lang: &str, script: &str) -> Command {
    let mut command = as_user(uid, "bash");
    command
        .arg(tree.path(&format!("labs/{script}")))
        .current_dir(&tree.dir)
        .env("LANG", lang)
        .env("TCPECHOD", tree.path("TCPechod"))
        .env("TCPECHO", tree.path("TCPecho"))
        .env("LAB_OUT", tree.out_for(uid));
    command
}

/// Runs a script to its end (at most 120 s, then its process group is
/// killed and the test fails): its exit status and its output.
fn run_script(what: &str, mut command: Command) -> (Option<i32>, String) {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|err| panic!("{what}: {err}"));
    let pid = child.id() as i32;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
        signal(-pid, libc::SIGKILL);
        panic!("{what} did not finish in time");
    });
    let output = output.expect("wait for the script");
    (output.status.code(), text_of(&output))
}

/// A script's output with the lines that explain wrapped back into one:
/// what a phrase says, wherever the 88 columns cut it.
fn flat(text: &str) -> String {
    text.replace("\n   ", " ")
}

fn text_of(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Whether `uid` may open a private network here: a user namespace and a
/// network namespace with its loopback up, as labs/private-net.sh does.
fn private_net_allowed(uid: u32) -> bool {
    let mut command = as_user(uid, "unshare");
    command.args([
        "--user",
        "--map-current-user",
        "--keep-caps",
        "--net",
        "--",
        "ip",
        "link",
        "set",
        "lo",
        "up",
    ]);
    command.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Who runs the scripts as "a student": nobody when the tests are root,
/// else the tester.
fn student() -> u32 {
    if is_root() {
        NOBODY
    } else {
        nix::unistd::getuid().as_raw()
    }
}

// ---------------------------------------------------------------- ports

/// The setup of a "machine" of a room in a network namespace of its own:
/// ADDRESS on its loopback, and a default route from it.
fn machine_setup(address: &str) -> String {
    format!("ip link set lo up && ip addr add {address}/24 dev lo && ip route add default dev lo")
}

/// What labs/port.sh says (stdout, stderr) as user `uid` on a machine
/// whose address is `address`; `then` runs in the same shell before it.
/// As root: a network namespace, setpriv for the user. As a user: a user
/// namespace in which the tester is `uid`. None when neither is possible.
fn port_on(tree: &Tree, address: &str, uid: u32, then: &str) -> Option<(u16, String)> {
    let port_sh = tree.path("labs/port.sh");
    let script = if is_root() {
        let user = if uid == 0 {
            port_sh
        } else {
            format!("setpriv --reuid={uid} --regid={uid} --clear-groups {port_sh}")
        };
        format!("{} && {then} {user}", machine_setup(address))
    } else {
        format!("{} && {then} {port_sh}", machine_setup(address))
    };
    let mut command = Command::new("unshare");
    if is_root() {
        // A PID namespace too: whatever `then` started dies with it.
        command.args(["--net", "--pid", "--fork", "--kill-child"]);
    } else {
        if !private_net_allowed(student()) {
            return None;
        }
        command.arg("--user");
        if uid == 0 {
            command.arg("--map-root-user");
        } else {
            command.args([&format!("--map-user={uid}"), &format!("--map-group={uid}")]);
        }
        command.args(["--keep-caps", "--net"]);
    }
    command.args(["--", "sh", "-c", &script]);
    for name in ["SUDO_UID", "SUDO_GID", "SUDO_USER", "LC_ALL", "LC_MESSAGES"] {
        command.env_remove(name);
    }
    command.env("LANG", "C");
    let output = run_bounded(&mut command, b"");
    let err = stderr_text(&output);
    assert!(output.status.success(), "port.sh as uid {uid} on {address}: {}\n{err}", output.status);
    let port = String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or_else(|_| {
        panic!(
            "port.sh prints the port alone on stdout: {:?}\n{err}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    Some((port, err))
}

fn skip_without_namespaces(test: &str) {
    assert!(std::env::var_os("CI").is_none(), "{test}: CI runs as root, which may make network namespaces");
    eprintln!("{test}: skipped: not root, and user namespaces are refused here");
}

/// Two users on one machine get two ports; the first user of a Linux
/// installation (uid 1000) and root get 8000 + LAST; every port stays
/// below 32768, where Linux starts picking clients' ports.
#[test]
fn two_users_of_one_machine_get_two_ports() {
    let tree = Tree::new("users");
    let mut ports = Vec::new();
    for (uid, address, expected) in [
        (1000, "10.80.3.10", 8010),
        (1001, "10.80.3.10", 8266),
        (0, "10.80.3.10", 8010),
        (1095, "10.80.3.254", 32574),
    ] {
        let Some((port, explained)) = port_on(&tree, address, uid, "") else {
            return skip_without_namespaces("two_users_of_one_machine_get_two_ports");
        };
        assert_eq!(port, expected, "uid {uid} on {address}:\n{explained}");
        assert!(port < 32768, "below the ephemeral ports: {port}");
        assert!(explained.contains(&format!("= {port}: ")), "port.sh shows its sum:\n{explained}");
        ports.push((uid, port));
    }
    assert_ne!(ports[0].1, ports[1].1, "two users of one machine: {ports:?}");
}

/// Two machines of one room (one /24) get two ports, for the same user;
/// the statement's example, 163.117.144.123, gives 8123.
#[test]
fn two_machines_of_one_room_get_two_ports() {
    let tree = Tree::new("machines");
    let mut ports = HashSet::new();
    for (address, expected) in [("10.80.3.10", 8010), ("10.80.3.11", 8011), ("163.117.144.123", 8123)] {
        let Some((port, explained)) = port_on(&tree, address, 1000, "") else {
            return skip_without_namespaces("two_machines_of_one_room_get_two_ports");
        };
        assert_eq!(port, expected, "uid 1000 on {address}:\n{explained}");
        assert!(explained.contains("source address of this machine's default route"), "{explained}");
        ports.insert(port);
    }
    assert_eq!(ports.len(), 3, "{ports:?}");
}

/// A port taken by another user's server: port.sh says so, names the
/// user, and prints the next free port of the same form (same machine
/// number, next user slot). Taken by the student's own server: it names
/// the process, and the port stays theirs.
#[test]
fn a_taken_port_is_said_and_the_next_free_one_given() {
    if !needs_root("a_taken_port_is_said_and_the_next_free_one_given", "to run things as other users") {
        return;
    }
    let tree = Tree::new("taken");
    let server = tree.path("TCPechod");
    // Starts a server as UID on PORT and waits until it listens there.
    let serve = |uid: u32, port: u16| {
        format!(
            "setpriv --reuid={uid} --regid={uid} --clear-groups {server} {port} 2>/dev/null & \
             n=0; until ss -Htln '( sport = :{port} )' | grep -q .; do n=$((n + 1)); \
             [ $n -lt 600 ] || exit 1; sleep 0.05; done;"
        )
    };
    let (port, said) = port_on(&tree, "10.80.3.10", 1000, &serve(1001, 8010)).unwrap();
    assert_eq!(port, 8266, "the next free port of the form 8000 + 10 + 256 * SLOT:\n{said}");
    for phrase in ["WARNING: port 8010 is taken", "(uid 1001)", "Use 8266 instead"] {
        assert!(said.contains(phrase), "{phrase:?}:\n{said}");
    }
    let (port, said) = port_on(&tree, "10.80.3.10", 1000, &serve(1000, 8010)).unwrap();
    assert_eq!(port, 8010, "the student's own server keeps the port theirs:\n{said}");
    for phrase in ["taken by TCPechod (PID ", "a process of yours"] {
        assert!(said.contains(phrase), "{phrase:?}:\n{said}");
    }
}

// ------------------------------------------------- exercise 2 as a user

/// As an ordinary user, 02-tcpdump.sh captures by itself in a private
/// network namespace: the handshake's SYN, inside, on its own loopback.
/// Where the kernel refuses user namespaces, it shows the recording.
#[test]
fn tcpdump_lab_as_a_user_captures_in_a_private_network() {
    if !have("tcpdump") {
        assert!(std::env::var_os("CI").is_none(), "CI has tcpdump");
        eprintln!("skipped: tcpdump is not installed");
        return;
    }
    let tree = Tree::new("tcpdump-user");
    let user = student();
    let (status, text) = run_script("02-tcpdump.sh", lab_as(&tree, user, "C", "02-tcpdump.sh"));
    let text = flat(&text);
    assert_eq!(status, Some(0), "{text}");
    if !private_net_allowed(user) {
        eprintln!("user namespaces are refused here: the recording must show instead");
        assert!(text.contains("A RECORDED capture"), "{text}");
        return;
    }
    for phrase in [
        "You are not root: the capture runs in a private network",
        "$ labs/private-net.sh --new labs/02-tcpdump.sh",
        "In the private network: a loopback of its own",
        "Flags [S],",
        "Flags [S.]",
        "Flags [R]",
        "each connection opens with [S]",
    ] {
        assert!(text.contains(phrase), "{phrase:?}:\n{text}");
    }
    assert!(!text.contains("RECORDED"), "a capture of its own, not the recording:\n{text}");
    // The capture was made here, now, and kept in the run's folder.
    let out = tree.out_for(user).join("02-tcpdump/latest/02-tcpdump.txt");
    let capture = fs::read_to_string(&out).unwrap_or_else(|err| panic!("{out:?}: {err}\n{text}"));
    let port = numbers_after(&text, "listening on port ").into_iter().next().expect("the server's port");
    assert!(
        capture.contains(&format!(".{port}: Flags [S],")),
        "a SYN to the server's port {port}:\n{capture}"
    );
    wait_until("the run's processes to stop", || holders_of(&tree.dir).is_empty().then_some(()));
}

/// Where user namespaces are refused (forced here with LAB_NO_USERNS=1),
/// 02-tcpdump.sh says it shows a recording, and why, and shows it (also
/// where tcpdump is missing).
#[test]
fn tcpdump_lab_shows_the_recording_where_namespaces_are_refused() {
    let tree = Tree::new("tcpdump-recording");
    for (lang, title, why, reason, marker) in [
        (
            "C",
            "A RECORDED capture: not this machine's traffic",
            "No capture can be made here:",
            "LAB_NO_USERNS=1 is set",
            ">> LOOK: ",
        ),
        (
            "es_ES.UTF-8",
            "Una captura GRABADA: no es el tráfico",
            "Aquí no se puede capturar:",
            "LAB_NO_USERNS=1 está puesto",
            ">> FÍJATE: ",
        ),
    ] {
        let mut command = lab_as(&tree, student(), lang, "02-tcpdump.sh");
        command.env("LAB_NO_USERNS", "1");
        let (status, text) = run_script("02-tcpdump.sh", command);
        let text = flat(&text);
        assert_eq!(status, Some(0), "{text}");
        // Without tcpdump, that is the reason given.
        let reason = if have("tcpdump") { reason } else { "tcpdump" };
        for phrase in [title, why, reason, marker] {
            assert!(text.contains(phrase), "{phrase:?}:\n{text}");
        }
        for phrase in [
            "$ cat labs/recorded/02-tcpdump.txt",
            "$ tcpdump -l -n -i lo \"tcp port 8123\"",
            "Flags [S],",
            "Flags [R]",
        ] {
            assert!(
                text.contains(phrase),
                "the recording, with the command that made it ({phrase:?}):\n{text}"
            );
        }
        assert!(!text.contains("private network of this run"), "{text}");
    }
}

/// labs/private-net.sh with no command opens a shell in a private network;
/// the same command in a second terminal joins that SAME network (a command
/// given to it runs there); --new makes another. When the first shell
/// exits, its PID file goes.
#[test]
fn a_second_terminal_joins_the_same_private_network() {
    // An ordinary user where the kernel lets one; else the tester (root
    // may make user namespaces where users may not).
    let Some(user) =
        [student(), nix::unistd::getuid().as_raw()].into_iter().find(|&u| private_net_allowed(u))
    else {
        assert!(!is_root() || std::env::var_os("CI").is_none(), "root may make user namespaces");
        eprintln!("skipped: user namespaces are refused here");
        return;
    };
    let tree = Tree::new("join");
    let runtime = tree.dir.join("runtime");
    fs::create_dir(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    if is_root() {
        std::os::unix::fs::chown(&runtime, Some(user), Some(user)).unwrap();
    }
    let script = tree.path("labs/private-net.sh");
    let terminal = |args: &[&str]| {
        let mut command = as_user(user, "bash");
        command.arg(&script).args(args).env("XDG_RUNTIME_DIR", &runtime);
        command
    };
    let mut first =
        ProcessGroup::spawn(terminal(&[]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()));
    let mut stdin = first.leader().stdin.take().unwrap();
    let mut output = first.leader().stderr.take().unwrap();
    let said = thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut output, &mut text);
        text
    });
    let pidfile = runtime.join("tcpechod-private-net/pid");
    let shell: i32 =
        wait_until("the first shell's PID file", || fs::read_to_string(&pidfile).ok()?.trim().parse().ok());
    let net = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let private = net(&shell.to_string());
    assert_ne!(private, net("self"), "the first shell is in a network of its own");

    let joined = run_bounded(&mut terminal(&["readlink", "/proc/self/ns/net"]), b"");
    assert!(joined.status.success(), "{}", stderr_text(&joined));
    assert_eq!(
        String::from_utf8_lossy(&joined.stdout).trim(),
        private.to_string_lossy(),
        "a second terminal joins it"
    );
    let other = run_bounded(&mut terminal(&["--new", "readlink", "/proc/self/ns/net"]), b"");
    assert!(other.status.success(), "{}", stderr_text(&other));
    let other = String::from_utf8_lossy(&other.stdout).trim().to_string();
    assert!(
        other != private.to_string_lossy() && other != net("self").to_string_lossy(),
        "--new: one of its own"
    );

    std::io::Write::write_all(&mut stdin, b"exit\n").unwrap();
    drop(stdin);
    let status = wait_until("the first shell to exit", || first.try_wait());
    let said = said.join().unwrap();
    assert!(status.success(), "{status}:\n{said}");
    for phrase in [
        "Your private network: only lo",
        "labs/private-net.sh joins it",
        ">> LOOK: only lo",
        "Private network closed",
    ] {
        assert!(said.contains(phrase), "{phrase:?}:\n{said}");
    }
    assert!(!pidfile.exists(), "the PID file goes with the first shell");
}

/// The recordings the statement points to hold what it says: the capture
/// of 02-tcpdump.sh and the stacks of exercise 4, each with the command
/// that made it above it.
#[test]
fn the_recordings_hold_what_the_statement_says() {
    let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("labs/recorded");
    let capture = fs::read_to_string(recorded.join("02-tcpdump.txt")).unwrap();
    let command = capture.lines().position(|l| l == "$ tcpdump -l -n -i lo \"tcp port 8123\"");
    let first_packet = capture.lines().position(|l| l.contains(" IP 127.0.0.1."));
    assert!(command.is_some() && command < first_packet, "the command above the packets:\n{capture}");
    for flags in ["Flags [S],", "Flags [S.],", "Flags [P.],", "Flags [F.],", "Flags [R],"] {
        assert!(capture.contains(flags), "{flags}:\n{capture}");
    }
    let stacks = fs::read_to_string(recorded.join("04-stack.txt")).unwrap();
    for phrase in
        ["$ cat /proc/", "sk_wait_data", "tcp_recvmsg", "sk_stream_wait_memory", "tcp_sendmsg", "wait_woken"]
    {
        assert!(stacks.contains(phrase), "{phrase}:\n{stacks}");
    }
}

// ------------------------------------------- the core as an ordinary user

/// A core script as an ordinary user, end to end, in `lang`: what it must
/// show, and never what needs root.
fn core_lab_as_a_user(script: &str, lang: &str, expected: &[&str]) {
    let tree = Tree::new(script.trim_end_matches(".sh"));
    let (status, text) = run_script(script, lab_as(&tree, student(), lang, script));
    let text = flat(&text);
    assert_eq!(status, Some(0), "{script} as uid {}:\n{text}", student());
    let marker = if lang.starts_with("es") { ">> FÍJATE:" } else { ">> LOOK:" };
    assert!(text.contains(marker), "{script} speaks {lang}:\n{text}");
    for phrase in expected {
        assert!(text.contains(phrase), "{script} should show {phrase:?}:\n{text}");
    }
    for wrong in ["SKIPPED", "OMITIDO", "Permission denied", "Operation not permitted"] {
        assert!(!text.contains(wrong), "{script} as a user: {wrong:?}:\n{text}");
    }
    wait_until("the run's processes to stop", || holders_of(&tree.dir).is_empty().then_some(()));
}

#[test]
fn clients_lab_as_a_user() {
    core_lab_as_a_user("01-clients.sh", "C", &["two clients at once:", "$ ps x -o pid,ppid,stat,args | awk"]);
}

#[test]
fn netstat_lab_as_a_user() {
    core_lab_as_a_user("03-netstat.sh", "es_ES.UTF-8", &["LISTEN", "TIME-WAIT", "timer:(timewait,"]);
}

/// Exercise 4 without root: the queues of the children's sockets and the
/// system calls they are blocked in tell them apart, not the stack.
#[test]
fn misbehaving_clients_lab_as_a_user() {
    let mut expected = vec![
        "$ ps x -o pid,ppid,stat,wchan:32,args | awk",
        "$ ss -tnp \"( sport = :",
        "Recv-Q 0, Send-Q 0: nothing arrived to read and nothing waits to go out: it waits to read.",
        "it waits to write.",
        "labs/recorded/04-stack.txt",
    ];
    // /proc/PID/syscall: where the kernel lets the process's own user read it.
    if fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").map_or(true, |s| s.trim() == "0") {
        expected.extend(["= read (the first number", "= write (the first number"]);
    }
    core_lab_as_a_user("04-misbehaving-clients.sh", "C", &expected);
}

#[test]
fn zombies_lab_as_a_user() {
    core_lab_as_a_user("05-zombies.sh", "C", &["$ ps x | awk", "<defunct>", "zombies=3"]);
}

#[test]
fn sigpipe_lab_as_a_user() {
    core_lab_as_a_user("06-sigpipe.sh", "es_ES.UTF-8", &["killed by signal 13 (SIGPIPE)", "sigpipe=1"]);
}

#[test]
fn shutdown_lab_as_a_user() {
    core_lab_as_a_user(
        "07-shutdown.sh",
        "es_ES.UTF-8",
        &["sent SIGTERM to child", "$ ps x -o pid,ppid,pgid,stat,args | awk"],
    );
}

// ------------------------------------------------------------------ sudo

/// Every file and folder under `dir` (links themselves, not followed)
/// whose owner is not `uid`.
fn not_owned_by(dir: &Path, uid: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let meta = fs::symlink_metadata(dir).unwrap();
    if meta.uid() != uid {
        found.push(dir.to_path_buf());
    }
    if meta.is_dir() {
        for entry in fs::read_dir(dir).unwrap() {
            found.extend(not_owned_by(&entry.unwrap().path(), uid));
        }
    }
    found
}

/// `sudo labs/02-tcpdump.sh` in a student's tree: the build runs as the
/// student (here a stand-in for make, which copies the programs, as
/// make's own build does at its end), and every file and folder the run
/// makes is the student's. A build that fails under sudo says to build as
/// oneself first.
#[test]
fn a_lab_run_with_sudo_leaves_nothing_of_roots_in_the_tree() {
    if !needs_root("a_lab_run_with_sudo_leaves_nothing_of_roots_in_the_tree", "to run things as other users")
    {
        return;
    }
    let script = if have("tcpdump") { "02-tcpdump.sh" } else { "05-zombies.sh" };
    let tree = Tree::new("sudo");
    let programs = tree.dir.join("programs");
    fs::create_dir(&programs).unwrap();
    for name in ["TCPechod", "TCPecho"] {
        fs::rename(tree.dir.join(name), programs.join(name)).unwrap();
    }
    let build =
        "build:\n\tmkdir -p target/release\n\tcp programs/TCPechod programs/TCPecho target/release/\n\
                 \tcp target/release/TCPechod target/release/TCPecho .\n";
    fs::write(tree.dir.join("Makefile"), build).unwrap();
    tree.open_to_all(&tree.dir);
    tree.give_to(NOBODY);
    let sudo = |command: &mut Command| {
        command
            .arg(tree.path(&format!("labs/{script}")))
            .current_dir(&tree.dir)
            .env_remove("TCPECHOD")
            .env_remove("TCPECHO")
            .env_remove("LAB_OUT")
            .env("LANG", "C")
            .env("SUDO_USER", "nobody")
            .env("SUDO_UID", NOBODY.to_string())
            .env("SUDO_GID", NOBODY.to_string());
    };
    let mut command = Command::new("bash");
    sudo(&mut command);
    let (status, text) = run_script(script, command);
    assert_eq!(status, Some(0), "{text}");
    assert!(tree.dir.join("TCPechod").exists(), "make built the programs:\n{text}");
    assert!(tree.dir.join(format!("labs/out/{}/latest", script.trim_end_matches(".sh"))).exists(), "{text}");
    wait_until("the run's processes to stop", || holders_of(&tree.dir).is_empty().then_some(()));
    let roots = not_owned_by(&tree.dir, NOBODY);
    assert!(roots.is_empty(), "files of root's in the student's tree: {roots:?}\n{text}");

    // The student's cargo out of reach: a build that fails says what to do.
    fs::write(tree.dir.join("Makefile"), "build:\n\tfalse\n").unwrap();
    fs::remove_file(tree.dir.join("TCPechod")).unwrap();
    let mut command = Command::new("bash");
    sudo(&mut command);
    let (status, text) = run_script(script, command);
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains("With sudo the build runs as nobody, never as root: build it as yourself first"),
        "{text}"
    );
    let roots = not_owned_by(&tree.dir, NOBODY);
    assert!(roots.is_empty(), "files of root's in the student's tree: {roots:?}\n{text}");
}

// ------------------------------------------------ only the runner's own

/// The listings a script shows hold only the runner's processes: another
/// user's server with zombies of its own runs meanwhile, and none of its
/// PIDs shows, while the run's own zombies do.
#[test]
fn listings_show_only_the_runners_processes() {
    if !needs_root("listings_show_only_the_runners_processes", "to run things as other users") {
        return;
    }
    // Root's server, with two zombies (no reaper).
    let server = Server::start(&["--no-reaper"]);
    for _ in 0..2 {
        drop(server.connect());
    }
    let zombies = server.wait_for_children(2, Proc::is_zombie);
    let theirs: HashSet<u32> = zombies.iter().map(|p| p.pid as u32).chain([server.pid as u32]).collect();
    let tree = Tree::new("own");
    for script in ["05-zombies.sh", "01-clients.sh", "07-shutdown.sh"] {
        let (status, text) = run_script(script, lab_as(&tree, NOBODY, "C", script));
        assert_eq!(status, Some(0), "{text}");
        let rows = listed_pids(&text);
        assert!(!rows.is_empty(), "{script} lists processes:\n{text}");
        let shown: Vec<&u32> = rows.intersection(&theirs).collect();
        assert!(shown.is_empty(), "{script} lists another user's processes {shown:?}:\n{text}");
        if script == "05-zombies.sh" {
            assert!(text.contains("<defunct>"), "its own zombies show:\n{text}");
        }
    }
}

/// The PIDs of the rows of every `ps` listing in a run's output: the first
/// column of the lines that follow a `$ ps` line, up to the next `$` line
/// or the first line that is not a row.
fn listed_pids(text: &str) -> HashSet<u32> {
    let mut pids = HashSet::new();
    let mut in_listing = false;
    for line in text.lines() {
        if line.starts_with("$ ") {
            in_listing = line.starts_with("$ ps ");
            continue;
        }
        if !in_listing || line.trim_start().starts_with("PID") {
            continue;
        }
        match line.split_whitespace().next().and_then(|pid| pid.parse().ok()) {
            Some(pid) => {
                pids.insert(pid);
            }
            None => in_listing = false,
        }
    }
    pids
}

// --------------------------------------------------------------- helpers
