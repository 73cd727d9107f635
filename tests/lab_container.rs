//! The lab's container, for a student whose laptop does not run Linux
//! (.devcontainer/lab.Dockerfile, entered with ./lab-shell or VS Code).
//!
//! The image is built here as on a laptop, FROM the official Rust image it
//! names; as no image registry can be reached here, a stand-in is made
//! under that very name first (tests/standin-rust-image.sh: Debian from
//! Debian's mirror and this machine's own toolchain). Then, in a scratch
//! copy of the repository that belongs to a user other than the image's
//! (uid 1234), everything runs through ./lab-shell, as the user student:
//! make, the server and its client, the port of labs/port.sh reached from
//! the laptop's side, `ps x`, `ss -tan`, tcpdump on the container's
//! loopback, a private network (labs/private-net.sh), the scripts of
//! exercises 1 to 7, and the student's `make check` on the reference
//! solution. Every file the container makes in the folder belongs to the
//! folder's owner. The crates come from this machine's cargo registry,
//! copied in: the test needs no network but Debian's mirror.
//!
//! It needs a running Docker, and to make the stand-in, root and mmdebstrap.
//! Where they are missing, the test says why in one line and passes, except
//! when the environment variable CI is set: there it must run (`.ci/run`
//! starts Docker and installs mmdebstrap). The images (the stand-in and
//! tcpechod-lab) and the network tcpechod-lab are kept for the next run;
//! the containers and the copy are removed.
//!
//! devcontainer.json is read without Docker: what it names exists, and it
//! gives the container what ./lab-shell gives.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use testbed::*;

/// The repository.
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The owner the scratch copy gets when the test runs as root: not the
/// image's student (1000), so that ./lab-shell must give student this uid.
const OWNER: u32 = 1234;

/// What a command did.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn text(&self) -> String {
        format!("status {}\n--- stdout\n{}--- stderr\n{}", self.status, self.stdout, self.stderr)
    }
}

/// Runs `command` (stdin empty, English) for at most `limit`, reading its
/// output as it comes (see `testbed::run_within`: on time out the test
/// fails, and its whole process group is killed).
fn run_for(command: &mut Command, limit: Duration) -> Ran {
    // English, and none of the caller's terminal, unless the test says otherwise.
    let set: Vec<String> = command.get_envs().map(|(name, _)| name.to_string_lossy().into_owned()).collect();
    for name in ["LANG", "LC_ALL", "LC_MESSAGES", "TERM", "TCPECHOD_LAB"] {
        if !set.iter().any(|s| s == name) {
            command.env_remove(name);
        }
    }
    if !set.iter().any(|s| s == "LANG") {
        command.env("LANG", "C");
    }
    let output = run_within(command, limit);
    Ran { status: output.status, stdout: stdout_text(&output), stderr: stderr_text(&output) }
}

fn docker(args: &[&str]) -> Ran {
    run_for(Command::new("docker").args(args), TIMEOUT)
}

/// The scratch copy of the repository, and the student's container in it.
struct Lab {
    dir: PathBuf,
}

impl Lab {
    /// `lab-shell ARGS...`, run from `from` (a folder of the copy).
    fn shell_in(&self, from: &str, args: &[&str], limit: Duration) -> Ran {
        run_for(Command::new(self.dir.join("lab-shell")).args(args).current_dir(self.dir.join(from)), limit)
    }

    fn shell(&self, args: &[&str]) -> Ran {
        self.shell_in("", args, TIMEOUT)
    }

    /// `lab-shell sh -c SCRIPT`, which must succeed; its stdout.
    fn sh(&self, script: &str) -> String {
        let ran = self.shell(&["sh", "-c", script]);
        assert!(ran.status.success(), "lab-shell sh -c {script:?}:\n{}", ran.text());
        ran.stdout
    }

    /// The container of this copy (./lab-shell labels it with the folder).
    fn container(&self) -> Option<String> {
        let filter = format!("label=tcpechod-lab.folder={}", self.dir.display());
        let names = docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]).stdout;
        names.lines().next().map(str::to_owned)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(name) = self.container() {
            let _ = docker(&["rm", "-f", &name]);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Copies the repository's sources (not what builds make) into `to`.
fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let at_top = from == root();
        let built = matches!(name.as_str(), "target" | "out" | ".git" | "dist")
            || (at_top && matches!(name.as_str(), "TCPechod" | "TCPecho" | "echobench"))
            || name.starts_with(".TCPecho")
            || name.starts_with("entrega-");
        if built {
            continue;
        }
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else if kind.is_file() {
            fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// Every file and folder under `dir` that does not belong to `uid`.
fn not_owned_by(dir: &Path, uid: u32) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let meta = fs::symlink_metadata(entry.path()).unwrap();
        if meta.uid() != uid {
            found.push(entry.path());
        }
        if meta.is_dir() {
            found.extend(not_owned_by(&entry.path(), uid));
        }
    }
    found
}

/// The base image lab.Dockerfile names (its FROM line).
fn base_image() -> String {
    let dockerfile = fs::read_to_string(root().join(".devcontainer/lab.Dockerfile")).unwrap();
    let from = dockerfile.lines().find_map(|line| line.strip_prefix("FROM ")).expect("a FROM line");
    from.trim().to_owned()
}

/// This machine's rustc, X.Y.
fn rustc_version() -> String {
    let out = Command::new("rustc").arg("-vV").output().expect("rustc -vV");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let release = text.lines().find_map(|l| l.strip_prefix("release: ")).expect("rustc's release").to_owned();
    release.splitn(3, '.').take(2).collect::<Vec<_>>().join(".")
}

/// Whether the test runs in a network namespace with nothing but a
/// loopback (tests/conditions.sh runs the tests again in such): Docker's
/// bridges, and the ports it publishes, are in the machine's, out of reach.
fn in_a_network_of_its_own() -> bool {
    let devices = fs::read_to_string("/proc/self/net/dev").unwrap_or_default();
    let names: Vec<&str> =
        devices.lines().skip(2).filter_map(|l| Some(l.split(':').next()?.trim())).collect();
    !names.is_empty() && names.iter().all(|name| *name == "lo")
}

#[test]
fn the_lab_container_runs_the_lab_as_a_normal_user() {
    let test = "the_lab_container_runs_the_lab_as_a_normal_user";
    let started = Instant::now();
    if in_a_network_of_its_own() {
        eprintln!("skipped: this network namespace has only lo, and Docker publishes ports in the machine's (it runs in make test)");
        return;
    }
    if !Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success()) {
        return cannot_run_here(test, "Docker does not run here (start dockerd, as .ci/run does)");
    }
    // The base, or its stand-in under the same name.
    let base = base_image();
    if !docker(&["image", "inspect", &base]).status.success() {
        if !is_root() || !have("mmdebstrap") {
            return cannot_run_here(
                test,
                &format!("{base} is not here, and making its stand-in takes root and mmdebstrap"),
            );
        }
        let clock = Instant::now();
        let made = run_for(
            Command::new(root().join("tests/standin-rust-image.sh")).arg(&base),
            Duration::from_secs(900),
        );
        assert!(made.status.success(), "tests/standin-rust-image.sh {base}:\n{}", made.text());
        eprintln!("the stand-in for {base}: made in {:.0?}", clock.elapsed());
    }

    // The copy, and the crates of both crates, for a build with no network.
    let lab =
        Lab { dir: std::env::temp_dir().join(format!("tcpechod-lab-container-{}", std::process::id())) };
    let _ = fs::remove_dir_all(&lab.dir);
    copy_tree(root(), &lab.dir);
    let owner = if is_root() { OWNER } else { nix::unistd::getuid().as_raw() };
    if is_root() {
        let chown = run_for(Command::new("chown").args(["-R", "1234:1234"]).arg(&lab.dir), TIMEOUT);
        assert!(chown.status.success(), "chown:\n{}", chown.text());
    }
    for manifest in ["Cargo.toml", "labs/student/Cargo.toml"] {
        let fetched = run_for(
            Command::new("cargo").args(["fetch", "--manifest-path"]).arg(root().join(manifest)),
            Duration::from_secs(300),
        );
        assert!(fetched.status.success(), "cargo fetch {manifest}:\n{}", fetched.text());
    }

    // ./lab-shell builds the image (if it is not built from these files
    // already) and starts the container.
    let clock = Instant::now();
    let first = lab.shell_in("", &["id", "-un"], Duration::from_secs(1800));
    assert!(first.status.success(), "./lab-shell id -un:\n{}", first.text());
    eprintln!("./lab-shell, image and container: {:.0?}", clock.elapsed());
    assert_eq!(first.stdout.trim(), "student", "{}", first.text());
    assert!(
        first.stderr.contains("lab-shell: the lab's container"),
        "it says it started it:\n{}",
        first.text()
    );
    assert_eq!(lab.sh("id -u").trim(), owner.to_string(), "student has the uid of the folder's owner");
    let name = lab.container().expect("the container");

    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cargo"));
    let registry = format!("{}/registry", cargo_home.display());
    let copied = docker(&["cp", &registry, &format!("{name}:/usr/local/cargo/")]);
    assert!(copied.status.success(), "docker cp {registry}:\n{}", copied.text());
    let offline = docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "chown -R student:student /usr/local/cargo/registry && printf '[net]\\noffline = true\\n' >/usr/local/cargo/config.toml",
    ]);
    assert!(offline.status.success(), "{}", offline.text());

    // The first build, as VS Code runs it when it creates the container.
    let devcontainer = devcontainer();
    let Some(Json::Str(post_create)) = devcontainer.get("postCreateCommand") else {
        panic!("devcontainer.json has no postCreateCommand");
    };
    let clock = Instant::now();
    let built = lab.shell_in("", &["sh", "-c", post_create], Duration::from_secs(1200));
    assert!(built.status.success(), "{post_create} in the container:\n{}", built.text());
    eprintln!("the first make in the container: {:.0?}", clock.elapsed());
    for binary in ["TCPechod", "TCPecho"] {
        let meta = fs::metadata(lab.dir.join(binary)).unwrap_or_else(|err| panic!("./{binary}: {err}"));
        assert_eq!(meta.uid(), owner, "./{binary} belongs to the folder's owner");
    }

    // Your port: labs/port.sh inside, published on the laptop's 127.0.0.1.
    let port: u16 = lab.sh("labs/port.sh 2>/dev/null").trim().parse().expect("a port from labs/port.sh");
    let slot = (owner as i64 - 1000).rem_euclid(96) as u16;
    assert!(
        port >= 8000 + 256 * slot + 2 && port <= 8000 + 256 * slot + 11,
        "port {port}: 8000 + the container's last number (2 to 11) + 256 * {slot}"
    );

    // Exercise 1: the server, and a client, in the container.
    lab.sh(&format!("setsid ./TCPechod {port} >/tmp/server.log 2>&1 </dev/null &"));
    wait_until("the server to listen", || {
        lab.sh(&format!("ss -Htln '( sport = :{port} )'")).contains("LISTEN").then_some(())
    });
    let echoed = lab.sh(&format!("echo hello from the container | ./TCPecho 127.0.0.1 {port}"));
    assert_eq!(echoed, "hello from the container\n");

    // A client on the laptop's side reaches the same server.
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect to the published port");
    sock.set_read_timeout(Some(TIMEOUT)).unwrap();
    sock.write_all(b"hello from the laptop\n").unwrap();
    sock.shutdown(Shutdown::Write).unwrap();
    let mut back = String::new();
    sock.read_to_string(&mut back).expect("the echo");
    assert_eq!(back, "hello from the laptop\n");

    // ps x: the parent, and a child for a client that stays connected.
    lab.sh(&format!("setsid ./TCPecho --hold 60 127.0.0.1 {port} </dev/null >/dev/null 2>&1 &"));
    let (parent, child) = wait_until("a child serving the client in ps x", || {
        let ps = lab.sh("ps x -o pid=,ppid=,args=");
        let servers: Vec<(u32, u32)> = ps
            .lines()
            .filter(|l| l.contains("./TCPechod"))
            .filter_map(|l| {
                let mut fields = l.split_whitespace();
                Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
            })
            .collect();
        servers.iter().find_map(|&(pid, ppid)| servers.iter().any(|&(p, _)| p == ppid).then_some((ppid, pid)))
    });
    assert_ne!(parent, child);

    // ss -tan: the listening socket, and both ends of the connection.
    let ss = lab.sh("ss -tan");
    assert!(ss.lines().any(|l| l.starts_with("LISTEN") && l.contains(&format!(":{port} "))), "{ss}");
    assert!(
        ss.lines().filter(|l| l.starts_with("ESTAB") && l.contains(&format!("127.0.0.1:{port}"))).count()
            >= 2,
        "{ss}"
    );

    // Exercise 2: tcpdump, run by student, sees a SYN on the loopback.
    let capture = lab.sh(&format!(
        "test \"$(id -u)\" != 0 || exit 1
        timeout 30 tcpdump -l -n -i lo -c 1 'tcp[tcpflags] & tcp-syn != 0 and dst port {port}' 2>/tmp/capture.err &
        tcpdump=$!
        until grep -q 'listening on' /tmp/capture.err; do kill -0 $tcpdump || exit 1; sleep 0.1; done
        echo syn | ./TCPecho 127.0.0.1 {port} >/dev/null
        wait $tcpdump"
    ));
    assert!(capture.contains(&format!("> 127.0.0.1.{port}: Flags [S]")), "{capture}");

    // A private network: its own loopback, where the same port is free.
    let private = lab.sh(&format!(
        "labs/private-net.sh --new sh -c '
            ip -brief addr
            ./TCPechod --bind 127.0.0.1 {port} 2>/tmp/private.log &
            server=$!
            until grep -q \"listening on\" /tmp/private.log; do kill -0 $server || exit 1; sleep 0.1; done
            echo hello from a private network | ./TCPecho 127.0.0.1 {port}
            kill $server'"
    ));
    let interfaces: Vec<&str> = private.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(interfaces.first(), Some(&"lo"), "{private}");
    assert!(!private.lines().any(|l| l.starts_with("eth")), "only lo:\n{private}");
    assert!(private.contains("hello from a private network\n"), "{private}");
    lab.sh(&format!("kill {parent}"));

    // The scripts of exercises 1 to 7, as student (not those of the going
    // further part, which say so in their header).
    let mut scripts: Vec<String> = fs::read_dir(lab.dir.join("labs"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".sh") && (1..=7).any(|i| n.starts_with(&format!("0{i}-"))))
        .filter(|n| {
            let text = fs::read_to_string(lab.dir.join("labs").join(n)).unwrap();
            !text.lines().take(3).any(|l| l.starts_with("# Going further"))
        })
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 7, "{scripts:?}");
    for script in &scripts {
        let ran = lab.shell_in("", &[&format!("labs/{script}")], Duration::from_secs(300));
        assert!(ran.status.success(), "labs/{script}:\n{}", ran.text());
        let text = format!("{}{}", ran.stdout, ran.stderr);
        assert!(text.contains(">> LOOK:") && !text.contains("SKIPPED:"), "labs/{script}:\n{text}");
        if script.starts_with("02-tcpdump") {
            assert!(!text.contains("RECORDED") && text.contains("Flags [S]"), "a real capture:\n{text}");
        }
    }

    // Exercises 5 to 7: the student's make check, on the reference solution.
    let patch = ["teacher/solution.patch", "labs/student-solution.patch"]
        .into_iter()
        .find(|p| lab.dir.join(p).exists())
        .expect("the reference solution");
    lab.sh(&format!("git apply -p1 {patch}"));
    let checked = lab.shell_in("labs/student", &["make", "check"], Duration::from_secs(900));
    assert!(checked.status.success(), "make check in labs/student:\n{}", checked.text());
    assert!(
        checked.stdout.contains("[OK]") && !checked.stdout.contains("[FAIL]"),
        "every check passes:\n{}",
        checked.text()
    );

    // Whatever the container made in the folder is the owner's.
    let foreign = not_owned_by(&lab.dir, owner);
    assert!(foreign.is_empty(), "not the owner's (uid {owner}): {foreign:?}");

    let stopped = lab.shell(&["--stop"]);
    assert!(stopped.status.success(), "./lab-shell --stop:\n{}", stopped.text());
    wait_until("the container to be gone", || lab.container().is_none().then_some(()));
    eprintln!("the lab container's test: {:.0?} in all", started.elapsed());
}

#[test]
fn lab_shell_says_what_is_wrong_in_one_line() {
    let lab_shell = root().join("lab-shell");
    let usage = run_for(Command::new(&lab_shell).arg("--bogus"), TIMEOUT);
    assert_eq!(usage.status.code(), Some(2), "{}", usage.text());
    assert!(
        usage.stderr.starts_with("usage: ./lab-shell") && usage.stderr.lines().count() == 1,
        "{}",
        usage.text()
    );

    let inside = run_for(Command::new(&lab_shell).env("TCPECHOD_LAB", "1"), TIMEOUT);
    assert_eq!(inside.status.code(), Some(1), "{}", inside.text());
    assert_eq!(inside.stderr, "lab-shell: you are already in the lab's container\n");

    // An engine that does not answer (Docker Desktop not started).
    let dir = std::env::temp_dir().join(format!("tcpechod-lab-shell-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("docker");
    fs::write(&fake, "#!/bin/sh\nexit 1\n").unwrap();
    fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
    for (lang, words) in [
        ("C", "does not answer: start Docker Desktop"),
        ("es_ES.UTF-8", "no responde: arranca Docker Desktop"),
    ] {
        let mut command = Command::new(&lab_shell);
        command.env("PATH", &path).env("LAB_ENGINE", "docker").env("LANG", lang);
        let ran = run_for(&mut command, TIMEOUT);
        assert_eq!(ran.status.code(), Some(1), "{}", ran.text());
        assert!(ran.stderr.contains(words) && ran.stderr.lines().count() == 1, "{}", ran.text());
    }
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn devcontainer_json_names_what_exists_and_gives_what_lab_shell_gives() {
    let config = devcontainer();
    let Some(Json::Obj(build)) = config.get("build") else { panic!("no build in devcontainer.json") };
    let Some(Json::Str(dockerfile)) = build.get("dockerfile") else { panic!("no build.dockerfile") };
    let Some(Json::Str(context)) = build.get("context") else { panic!("no build.context") };
    let folder = root().join(".devcontainer");
    assert!(folder.join(dockerfile).is_file(), "{dockerfile} is not beside devcontainer.json");
    assert!(folder.join(context).is_dir(), "{context} is not a folder");
    let dockerfile_text = fs::read_to_string(folder.join(dockerfile)).unwrap();
    // The files the Dockerfile copies are in the context.
    for line in dockerfile_text.lines().filter_map(|l| l.strip_prefix("COPY ")) {
        let source = line.split_whitespace().next().unwrap();
        assert!(folder.join(context).join(source).is_file(), "COPY {source}: not in the context");
    }

    // The base is the official Rust image at the version the lab is tested with.
    let base = base_image();
    let version = rustc_version();
    assert!(
        base.starts_with(&format!("rust:{version}-")) && base.ends_with("-bookworm"),
        "lab.Dockerfile starts FROM {base}; the lab is tested with Rust {version}: name rust:{version}-slim-bookworm"
    );

    // The same capabilities as ./lab-shell, the same folder, the user it makes.
    let Some(Json::Arr(run_args)) = config.get("runArgs") else { panic!("no runArgs") };
    let mut caps: Vec<String> = run_args
        .iter()
        .filter_map(|a| match a {
            Json::Str(s) => s.strip_prefix("--cap-add=").map(str::to_owned),
            _ => None,
        })
        .collect();
    caps.sort();
    let lab_shell = fs::read_to_string(root().join("lab-shell")).unwrap();
    let caps_line = lab_shell.lines().find_map(|l| l.strip_prefix("caps=\"")).expect("caps= in lab-shell");
    let mut shell_caps: Vec<String> = caps_line
        .trim_end_matches('"')
        .split_whitespace()
        .filter(|w| *w != "--cap-add")
        .map(str::to_owned)
        .collect();
    shell_caps.sort();
    assert_eq!(caps, shell_caps, "devcontainer.json's runArgs and lab-shell's caps");
    assert_eq!(config.get("workspaceFolder"), Some(&Json::Str("/lab".into())));
    assert!(lab_shell.contains("--volume \"$root:/lab\""), "lab-shell mounts the folder at /lab too");
    let Some(Json::Str(user)) = config.get("remoteUser") else { panic!("no remoteUser") };
    assert!(
        dockerfile_text.contains(&format!("--user-group {user}")),
        "lab.Dockerfile makes the user {user}"
    );
    let Some(Json::Str(post_create)) = config.get("postCreateCommand") else {
        panic!("no postCreateCommand")
    };
    let program = post_create.split_whitespace().next().unwrap();
    assert!(dockerfile_text.contains(&format!(" {program} ")), "lab.Dockerfile installs {program}");
}

/// .devcontainer/devcontainer.json, its comments taken out (the format
/// allows them), as JSON.
fn devcontainer() -> BTreeMap<String, Json> {
    let text = fs::read_to_string(root().join(".devcontainer/devcontainer.json")).unwrap();
    match Json::parse(&without_comments(&text)) {
        Ok(Json::Obj(map)) => map,
        other => panic!("devcontainer.json is not a JSON object: {other:?}"),
    }
}

/// `text` without its // and /* */ comments (those outside strings).
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                out.extend(chars.next());
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if c == '/' && chars.peek() == Some(&'/') {
            while chars.peek().is_some_and(|&c| c != '\n') {
                chars.next();
            }
        } else if c == '/' && chars.peek() == Some(&'*') {
            chars.next();
            let mut last = ' ';
            for c in chars.by_ref() {
                if last == '*' && c == '/' {
                    break;
                }
                last = c;
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON value: as much of JSON as a devcontainer file uses, strictly.
#[derive(Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(BTreeMap<String, Json>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let chars: Vec<char> = text.chars().collect();
        let mut at = 0;
        let value = Json::value(&chars, &mut at)?;
        Json::blanks(&chars, &mut at);
        if at != chars.len() {
            return Err(format!("text after the value, at {at}"));
        }
        Ok(value)
    }

    fn blanks(chars: &[char], at: &mut usize) {
        while chars.get(*at).is_some_and(|c| c.is_whitespace()) {
            *at += 1;
        }
    }

    fn expect(chars: &[char], at: &mut usize, wanted: char) -> Result<(), String> {
        Json::blanks(chars, at);
        if chars.get(*at) == Some(&wanted) {
            *at += 1;
            Ok(())
        } else {
            Err(format!("expected {wanted:?} at {at}"))
        }
    }

    fn value(chars: &[char], at: &mut usize) -> Result<Json, String> {
        Json::blanks(chars, at);
        match chars.get(*at) {
            Some('{') => {
                *at += 1;
                let mut map = BTreeMap::new();
                Json::blanks(chars, at);
                if chars.get(*at) == Some(&'}') {
                    *at += 1;
                    return Ok(Json::Obj(map));
                }
                loop {
                    Json::blanks(chars, at);
                    let Json::Str(key) = Json::value(chars, at)? else {
                        return Err(format!("a key at {at}"));
                    };
                    Json::expect(chars, at, ':')?;
                    let value = Json::value(chars, at)?;
                    if map.insert(key.clone(), value).is_some() {
                        return Err(format!("the key {key:?} twice"));
                    }
                    Json::blanks(chars, at);
                    match chars.get(*at) {
                        Some(',') => *at += 1,
                        Some('}') => {
                            *at += 1;
                            return Ok(Json::Obj(map));
                        }
                        _ => return Err(format!("expected ',' or '}}' at {at}")),
                    }
                }
            }
            Some('[') => {
                *at += 1;
                let mut items = Vec::new();
                Json::blanks(chars, at);
                if chars.get(*at) == Some(&']') {
                    *at += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(Json::value(chars, at)?);
                    Json::blanks(chars, at);
                    match chars.get(*at) {
                        Some(',') => *at += 1,
                        Some(']') => {
                            *at += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("expected ',' or ']' at {at}")),
                    }
                }
            }
            Some('"') => {
                *at += 1;
                let mut s = String::new();
                loop {
                    match chars.get(*at) {
                        None => return Err("a string without its end".into()),
                        Some('"') => {
                            *at += 1;
                            return Ok(Json::Str(s));
                        }
                        Some('\\') => {
                            let escaped = match chars.get(*at + 1) {
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some(&c @ ('"' | '\\' | '/')) => c,
                                other => return Err(format!("the escape {other:?} at {at}")),
                            };
                            s.push(escaped);
                            *at += 2;
                        }
                        Some(&c) => {
                            s.push(c);
                            *at += 1;
                        }
                    }
                }
            }
            Some(c) if *c == '-' || c.is_ascii_digit() => {
                let start = *at;
                while chars.get(*at).is_some_and(|c| matches!(c, '-' | '+' | '.' | 'e' | 'E' | '0'..='9')) {
                    *at += 1;
                }
                let number: String = chars[start..*at].iter().collect();
                number.parse().map(Json::Num).map_err(|_| format!("the number {number:?}"))
            }
            _ => {
                for (word, value) in
                    [("true", Json::Bool(true)), ("false", Json::Bool(false)), ("null", Json::Null)]
                {
                    let end = *at + word.len();
                    if chars.get(*at..end).is_some_and(|w| w.iter().copied().eq(word.chars())) {
                        *at = end;
                        return Ok(value);
                    }
                }
                Err(format!("no JSON value at {at}"))
            }
        }
    }
}

#[test]
fn comments_come_out_but_not_from_strings() {
    let text = "// a comment\n{\"a\": \"http://x\", /* b */ \"c\": [1, true, null]} // end";
    let Ok(Json::Obj(map)) = Json::parse(&without_comments(text)) else { panic!("{text}") };
    assert_eq!(map.get("a"), Some(&Json::Str("http://x".into())));
    assert_eq!(map.get("c"), Some(&Json::Arr(vec![Json::Num(1.0), Json::Bool(true), Json::Null])));
    assert!(Json::parse("{\"a\": 1,}").is_err(), "a trailing comma is an error");
}
