//! The submissions of a course, found in one folder and opened safely.
//!
//! Each entry of the folder is one submission, named after the student:
//! - `entrega-USER.tar.gz`, what `make entrega` makes (also `.tgz`, and a
//!   plain `.tar`);
//! - a folder holding `main.rs` and the answer sheet (an unpacked entrega);
//! - a folder holding a student's repository, as GitHub Classroom's
//!   download or `gh classroom clone student-repos` leaves it:
//!   `labs/student/src/main.rs`, and the sheets at its top;
//! - a folder holding one such tarball, as a learning platform's
//!   "download all submissions" leaves it.
//!
//! Its name, without `entrega-` and the extension, is the student's. A
//! folder holding just one folder is looked into (`alice/entrega-alice/`).
//!
//! Nothing in a submission is trusted. A tarball is read here, entry by
//! entry, and only regular files and folders are written, each under its
//! own folder: an entry that is a link or a device, an absolute path or a
//! path that climbs out with `..`, refuses the whole submission. Files are
//! read through no symbolic link, and every size is bounded.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tcpechod::support::log::reason;

use crate::answers::{Sheet, SHEETS};

/// The most a tarball may unpack to, and hold entries.
const MAX_UNPACKED: u64 = 64 << 20;
const MAX_ENTRIES: usize = 2000;
/// The most a file read from a submission (main.rs, a sheet) may hold.
const MAX_FILE: u64 = 1 << 20;

/// One entry of the submissions folder.
#[derive(Debug, Clone)]
pub struct Submission {
    pub student: String,
    pub path: PathBuf,
}

/// What grading reads of a submission.
#[derive(Debug)]
pub struct Files {
    /// The student's `main.rs`, as it is.
    pub main_rs: Vec<u8>,
    /// Each answer sheet found, with its text.
    pub sheets: Vec<(Sheet, String)>,
}

/// The submissions in `folder`, sorted by student, and the entries that
/// are none (other files, hidden ones).
pub fn find(folder: &Path) -> io::Result<(Vec<Submission>, Vec<String>)> {
    let mut found = Vec::new();
    let mut skipped = Vec::new();
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type()?;
        if name.starts_with('.') || (kind.is_file() && tarball_stem(&name).is_none()) {
            skipped.push(name);
            continue;
        }
        let stem = tarball_stem(&name).filter(|_| kind.is_file()).unwrap_or(&name);
        let student = stem.strip_prefix("entrega-").filter(|s| !s.is_empty()).unwrap_or(stem).to_string();
        found.push(Submission { student, path: entry.path() });
    }
    found.sort_by(|a, b| a.student.cmp(&b.student).then_with(|| a.path.cmp(&b.path)));
    skipped.sort();
    Ok((found, skipped))
}

/// The name of a tarball without its extension.
fn tarball_stem(name: &str) -> Option<&str> {
    [".tar.gz", ".tgz", ".tar"].iter().find_map(|ext| name.strip_suffix(ext)).filter(|s| !s.is_empty())
}

/// Opens a submission, unpacking it under `scratch` (an empty folder) if
/// it is a tarball; or why it is refused.
pub fn open(submission: &Submission, scratch: &Path) -> Result<Files, String> {
    let meta =
        fs::symlink_metadata(&submission.path).map_err(|err| format!("cannot read it: {}", reason(&err)))?;
    if meta.file_type().is_symlink() {
        return Err("it is a symbolic link, not followed".into());
    }
    if meta.is_file() {
        unpack(&submission.path, scratch)?;
        return read_files(scratch);
    }
    match read_files(&submission.path) {
        Err(why) if why.starts_with(NO_MAIN) => {
            // A folder with one tarball in it.
            let tarballs: Vec<PathBuf> = visible_entries(&submission.path)
                .into_iter()
                .filter(|p| {
                    p.is_file()
                        && tarball_stem(&p.file_name().unwrap_or_default().to_string_lossy()).is_some()
                })
                .collect();
            match tarballs.as_slice() {
                [tarball] if !is_symlink(tarball) => {
                    unpack(tarball, scratch)?;
                    read_files(scratch)
                }
                _ => Err(why),
            }
        }
        other => other,
    }
}

const NO_MAIN: &str = "no main.rs";

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The entries of a folder whose names do not start with a dot.
fn visible_entries(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect()
}

/// main.rs and the sheets of a submission's folder (or of the one folder
/// it holds).
fn read_files(dir: &Path) -> Result<Files, String> {
    let entries = visible_entries(dir);
    let top = match entries.as_slice() {
        [only] if only.is_dir() && !is_symlink(only) => only.clone(),
        _ => dir.to_path_buf(),
    };
    let mut main_rs = None;
    for candidate in ["main.rs", "labs/student/src/main.rs"] {
        if let Some(bytes) = read_bounded(&top, candidate)? {
            main_rs = Some(bytes);
            break;
        }
    }
    let main_rs = main_rs.ok_or(format!("{NO_MAIN} (nor labs/student/src/main.rs)"))?;
    let mut sheets = Vec::new();
    for sheet in SHEETS {
        if let Some(bytes) = read_bounded(&top, sheet.file)? {
            sheets.push((sheet, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    Ok(Files { main_rs, sheets })
}

/// The file `relative` under `top`, if it is there: reached through no
/// symbolic link, a regular file, at most MAX_FILE long.
fn read_bounded(top: &Path, relative: &str) -> Result<Option<Vec<u8>>, String> {
    let mut path = top.to_path_buf();
    for part in relative.split('/') {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Err(_) => return Ok(None),
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!("{} is a symbolic link, not followed", shown(top, &path)));
            }
            Ok(_) => {}
        }
    }
    let meta = fs::metadata(&path).map_err(|err| format!("cannot read {relative}: {}", reason(&err)))?;
    if !meta.is_file() {
        return Err(format!("{relative} is not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(format!("{relative} is larger than {} KiB", MAX_FILE >> 10));
    }
    let mut bytes = Vec::new();
    File::open(&path)
        .and_then(|f| f.take(MAX_FILE).read_to_end(&mut bytes))
        .map_err(|err| format!("cannot read {relative}: {}", reason(&err)))?;
    Ok(Some(bytes))
}

fn shown(top: &Path, path: &Path) -> String {
    path.strip_prefix(top).unwrap_or(path).display().to_string()
}

/// What a tarball that cannot be read is refused as (then why).
const UNREADABLE: &str = "not a readable tarball";

/// Unpacks the tarball `from` (gzip-compressed or not) into `to`, an
/// empty folder: regular files and folders only, all under `to`. A
/// tarball that is empty, cut short or damaged is refused as such.
pub fn unpack(from: &Path, to: &Path) -> Result<(), String> {
    let mut file = File::open(from).map_err(|err| format!("cannot open the tarball: {}", reason(&err)))?;
    let mut magic = [0u8; 2];
    let gzipped = file.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
    drop(file);
    let file = File::open(from).map_err(|err| format!("cannot open the tarball: {}", reason(&err)))?;
    if file.metadata().is_ok_and(|m| m.len() == 0) {
        return Err(format!("{UNREADABLE}: the file is empty"));
    }
    if !gzipped {
        return Archive::new(file).unpack(to).and_then(holds_something);
    }
    let mut gzip = Command::new("gzip")
        .arg("-dc")
        .stdin(file)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run gzip: {}", reason(&err)))?;
    let result = match gzip.stdout.take() {
        Some(out) => Archive::new(out).unpack(to),
        None => Err("cannot read gzip's output".into()),
    };
    // Where its output ended, gzip stops by itself, and says whether the
    // file was whole; anywhere else, what is left unread is not wanted.
    if matches!(result, Ok(Ended::Cut(_))) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while gzip.try_wait().is_ok_and(|s| s.is_none()) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let _ = gzip.kill();
    let status = gzip.wait();
    let failed = status.is_ok_and(|s| s.code().is_some_and(|code| code != 0));
    match result {
        Ok(Ended::Marked) => Ok(Ended::Marked),
        _ if failed => Err(format!("{UNREADABLE}: gzip could not decompress it (cut short, or damaged)")),
        other => other,
    }
    .and_then(holds_something)
}

/// How a tar stream ended: at its end mark (a zero block), or where the
/// input did.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    Marked,
    /// The input ended between entries, after this many.
    Cut(usize),
}

/// A stream that ended between entries is taken if it held some: GNU tar
/// reads it too.
fn holds_something(ended: Ended) -> Result<(), String> {
    match ended {
        Ended::Cut(0) => Err(format!("{UNREADABLE}: it holds nothing")),
        _ => Ok(()),
    }
}

/// A tar stream (POSIX ustar, GNU and pax), read once.
struct Archive<R: Read> {
    input: io::Take<R>,
    unpacked: u64,
}

impl<R: Read> Archive<R> {
    fn new(input: R) -> Self {
        // Headers and padding come on top of what is unpacked.
        Archive { input: input.take(MAX_UNPACKED + (MAX_ENTRIES as u64 + 2) * 1024), unpacked: 0 }
    }

    fn unpack(mut self, to: &Path) -> Result<Ended, String> {
        let mut long_name: Option<String> = None;
        let mut pax_path: Option<String> = None;
        for entries in 0..MAX_ENTRIES * 2 {
            let mut header = [0u8; 512];
            match self.block(&mut header)? {
                false => return Ok(Ended::Cut(entries)), // without the zero blocks
                true if header.iter().all(|&b| b == 0) => return Ok(Ended::Marked),
                true => {}
            }
            if !checksum_ok(&header) {
                return Err(format!("{UNREADABLE}: a header's checksum is wrong"));
            }
            let size = octal(&header[124..136]).ok_or(format!("{UNREADABLE}: a size is unreadable"))?;
            // Headers about the next entry: GNU's long name, pax records.
            match header[156] {
                b'L' => long_name = Some(self.small(size)?.trim_end_matches('\0').to_string()),
                b'x' => pax_path = pax_record(&self.small(size)?, "path").or(pax_path),
                b'g' => drop(self.small(size)?),
                _ => {}
            }
            if matches!(header[156], b'L' | b'x' | b'g') {
                continue;
            }
            let long = long_name.take();
            let name = pax_path.take().or(long).unwrap_or_else(|| header_name(&header));
            match header[156] {
                b'0' | b'7' | 0 => {
                    let path = safe_path(&name)?;
                    self.unpacked += size;
                    if self.unpacked > MAX_UNPACKED {
                        return Err(format!("it unpacks to more than {} MiB", MAX_UNPACKED >> 20));
                    }
                    match path {
                        Some(path) => self.file(&to.join(path), size, &name)?,
                        None => return Err(format!("a file with no name in the tarball: {name}")),
                    }
                }
                b'5' => {
                    if let Some(path) = safe_path(&name)? {
                        fs::create_dir_all(to.join(path))
                            .map_err(|err| format!("cannot unpack {name}: {}", reason(&err)))?;
                    }
                    self.skip(size)?;
                }
                b'1' => return Err(format!("a hard link in the tarball: {name}")),
                b'2' | b'K' => return Err(format!("a symbolic link in the tarball: {name}")),
                _ => {
                    return Err(format!(
                        "an entry that is neither a file nor a folder in the tarball: {name}"
                    ))
                }
            }
        }
        Err(format!("more than {MAX_ENTRIES} entries in the tarball"))
    }

    /// Reads one block; false at the end of the input.
    fn block(&mut self, block: &mut [u8; 512]) -> Result<bool, String> {
        let mut filled = 0;
        while filled < block.len() {
            match self.input.read(&mut block[filled..]) {
                Ok(0) if filled == 0 && self.input.limit() > 0 => return Ok(false),
                Ok(0) if self.input.limit() == 0 => {
                    return Err(format!("it unpacks to more than {} MiB", MAX_UNPACKED >> 20))
                }
                Ok(0) => return Err(format!("{UNREADABLE}: it is cut short, or too big")),
                Ok(n) => filled += n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(format!("cannot read the tarball: {}", reason(&err))),
            }
        }
        Ok(true)
    }

    /// The data of an entry, `size` bytes and the padding to a block,
    /// each block given to `sink`.
    fn data(&mut self, size: u64, mut sink: impl FnMut(&[u8]) -> Result<(), String>) -> Result<(), String> {
        let mut left = size;
        let mut block = [0u8; 512];
        while left > 0 {
            if !self.block(&mut block)? {
                return Err(format!("{UNREADABLE}: it is cut short, or too big"));
            }
            let used = left.min(512) as usize;
            sink(&block[..used])?;
            left -= used as u64;
        }
        Ok(())
    }

    fn skip(&mut self, size: u64) -> Result<(), String> {
        self.data(size, |_| Ok(()))
    }

    /// A small entry's data (a long name, pax records), as text.
    fn small(&mut self, size: u64) -> Result<String, String> {
        if size > 64 << 10 {
            return Err("a tar header larger than 64 KiB".into());
        }
        let mut bytes = Vec::new();
        self.data(size, |part| {
            bytes.extend_from_slice(part);
            Ok(())
        })?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn file(&mut self, path: &Path, size: u64, name: &str) -> Result<(), String> {
        let cannot = |err: io::Error| format!("cannot unpack {name}: {}", reason(&err));
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(cannot)?;
        }
        // Nothing here is a link (none is ever made), so this writes where
        // it says; a second entry of the same name replaces the first.
        let mut file = File::create(path).map_err(cannot)?;
        self.data(size, |part| io::Write::write_all(&mut file, part).map_err(cannot))
    }
}

/// The relative path an entry names, checked; None for the top itself.
fn safe_path(name: &str) -> Result<Option<PathBuf>, String> {
    if name.starts_with('/') {
        return Err(format!("an absolute path in the tarball: {name}"));
    }
    let mut path = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(format!("a path that leaves its folder in the tarball: {name}")),
            part => path.push(part),
        }
    }
    if path.components().count() > 32 {
        return Err(format!("a path too deep in the tarball: {name}"));
    }
    Ok(Some(path).filter(|p| !p.as_os_str().is_empty()))
}

/// The name in a header: ustar's prefix and name, or the name alone.
fn header_name(header: &[u8; 512]) -> String {
    let field = |bytes: &[u8]| {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let name = field(&header[..100]);
    // POSIX ustar keeps a prefix; GNU's "ustar  " uses those bytes otherwise.
    let prefix = if &header[257..263] == b"ustar\0" { field(&header[345..500]) } else { String::new() };
    if prefix.is_empty() {
        name
    } else {
        format!("{prefix}/{name}")
    }
}

/// An octal number field (NUL- or space-terminated); None for anything
/// else, base-256 sizes included (beyond any limit here).
fn octal(field: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

fn checksum_ok(header: &[u8; 512]) -> bool {
    let sum: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| if (148..156).contains(&i) { u64::from(b' ') } else { u64::from(b) })
        .sum();
    octal(&header[148..156]) == Some(sum)
}

/// The value of `key` among pax records (`LEN key=value\n` each).
fn pax_record(records: &str, key: &str) -> Option<String> {
    let mut rest = records;
    while let Some((len, _)) = rest.split_once(' ') {
        let len: usize = len.parse().ok()?;
        let record = rest.get(..len)?;
        rest = &rest[len..];
        let (_, pair) = record.split_once(' ')?;
        if let Some(value) = pair.trim_end_matches('\n').strip_prefix(key).and_then(|v| v.strip_prefix('=')) {
            return Some(value.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_in_their_folder() {
        assert_eq!(safe_path("entrega-a/main.rs").unwrap(), Some(PathBuf::from("entrega-a/main.rs")));
        assert_eq!(safe_path("./entrega-a//x").unwrap(), Some(PathBuf::from("entrega-a/x")));
        assert_eq!(safe_path("./").unwrap(), None);
        for bad in ["../x", "a/../../x", "a/..", "/etc/passwd"] {
            assert!(safe_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_of_students() {
        assert_eq!(tarball_stem("entrega-ana.tar.gz"), Some("entrega-ana"));
        assert_eq!(tarball_stem("x.tgz"), Some("x"));
        assert_eq!(tarball_stem(".tar.gz"), None);
        assert_eq!(tarball_stem("notes.txt"), None);
    }

    #[test]
    fn pax_records() {
        let records = "30 mtime=1700000000.123456789\n22 path=entrega-a/x.rs\n";
        assert_eq!(pax_record(records, "path").as_deref(), Some("entrega-a/x.rs"));
        assert_eq!(pax_record(records, "linkpath"), None);
    }
}
