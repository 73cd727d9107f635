//! A look at the student's source, for what no run can show: which
//! functions are signal handlers, what each of them calls, and who
//! collects the children. Comments, strings and character literals are
//! blanked first, so neither they nor the layout matter.
//!
//! Every function the kernel may run as a handler is read: each
//! `extern "C" fn`, and each function of the file named in
//! `Handler(NAME)`, `SigAction(NAME)` or `NAME as ...`. In a handler's body
//! every call `name(...)`, method call `.name(...)` and macro `name!(...)`
//! must be one a handler may make: the atomics' methods (load, store, swap,
//! fetch_*, compare_exchange*), errno's (`Errno::last_raw`, `set_raw`),
//! write(2), the wait family (waitpid, wait, waitid, wait3, wait4), `Some`,
//! `Ok`, an enum's variant. A call to a function the file defines (a
//! method too: a `.store()` of the student's own type) is followed into
//! its body, read by the same rule; so is the `drop` of a type of the file
//! that implements `Drop`, once the handler names that type. Every other
//! call is reported: exit, _exit, abort, kill, panic! and the like end the
//! process; close, drop, shutdown close a resource; a call through a
//! function pointer, or to a name imported under another (`use ... as`),
//! cannot be read; the rest (println!, format!, log, ...) are not
//! async-signal-safe.

/// Why a call has no place in a handler, gravest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Ends,
    Closes,
    Unsafe,
}

/// A call a handler (or a function it calls, `via`) should not make.
#[derive(Debug, Clone)]
pub struct Call {
    /// The name called (`format!` for a macro); None for a call through a
    /// function pointer.
    pub name: Option<String>,
    pub via: String,
    pub line: usize,
    pub kind: Kind,
}

/// A call of the wait family (waitpid, wait, ...) in what a handler runs.
#[derive(Debug, Clone)]
pub struct Wait {
    pub name: String,
    pub line: usize,
    /// Inside a loop (`loop`, `while`, `for`), in its function or around
    /// the call that led to it.
    pub in_loop: bool,
}

/// What a handler runs: the calls it should not make (the gravest first,
/// each name once, a few at most), its waits, and the functions read.
#[derive(Debug, Default)]
pub struct Reading {
    pub calls: Vec<Call>,
    pub waits: Vec<Wait>,
    read: Vec<usize>,
}

/// A function of the file: its name, the token of its `fn`, its body
/// (token range, braces excluded), and whether it is a method (in an
/// `impl` or a `trait`).
struct Function {
    name: String,
    at: usize,
    body: (usize, usize),
    method: bool,
}

const WAITS: &[&str] = &["waitpid", "wait", "waitid", "wait3", "wait4"];
/// Methods a handler may call: the atomics', and pointers'.
const METHODS: &[&str] = &[
    "load",
    "store",
    "swap",
    "fetch_add",
    "fetch_sub",
    "fetch_and",
    "fetch_or",
    "fetch_xor",
    "fetch_nand",
    "fetch_max",
    "fetch_min",
    "compare_exchange",
    "compare_exchange_weak",
    "as_ptr",
    "as_mut_ptr",
    "cast",
    "len",
];
/// Functions a handler may call by name, alone or after a path.
const FUNCTIONS: &[&str] =
    &["write", "waitpid", "wait", "waitid", "wait3", "wait4", "getpid", "getppid", "Some", "Ok", "Err"];
/// Functions a handler may call after a path only (`Errno::last_raw()`).
const PATH_FUNCTIONS: &[&str] = &["last", "last_raw", "set_raw", "from_raw", "null", "null_mut"];
const ENDS: &[&str] = &[
    "exit",
    "_exit",
    "_Exit",
    "abort",
    "kill",
    "killpg",
    "raise",
    "panic",
    "unreachable",
    "todo",
    "unimplemented",
    "assert",
    "assert_eq",
    "assert_ne",
    "unwrap",
    "expect",
];
const CLOSES: &[&str] = &["close", "drop", "shutdown", "close_range"];
const KEYWORDS: &[&str] = &[
    "if", "while", "match", "return", "for", "in", "loop", "as", "let", "mut", "ref", "unsafe", "else",
    "move", "fn", "where", "impl", "dyn", "break", "continue", "const", "static", "use", "pub", "crate",
    "self", "Self", "super", "extern",
];

/// The student's source, read once.
pub struct Source {
    code: String,
    /// Byte ranges of the tokens: identifiers (a raw `r#name` as `name`)
    /// and single punctuation characters.
    tokens: Vec<(usize, usize)>,
    functions: Vec<Function>,
    /// Names imported under another name (`use ... as NAME`).
    aliases: Vec<String>,
    /// Names of the file's `const`s and `static`s.
    constants: Vec<String>,
    /// Types of the file that implement Drop, with their `drop` function.
    drops: Vec<(String, usize)>,
}

impl Source {
    pub fn new(text: &str) -> Source {
        let code = code_only(text);
        let tokens = tokens(&code);
        let mut source = Source {
            code,
            tokens,
            functions: Vec::new(),
            aliases: Vec::new(),
            constants: Vec::new(),
            drops: Vec::new(),
        };
        source.functions = source.find_functions();
        source.aliases = source.find_aliases();
        source.constants = (1..source.tokens.len())
            .filter(|&i| matches!(source.tok(i - 1), "const" | "static") && source.is_identifier(i))
            .map(|i| source.tok(i).to_string())
            .collect();
        source.drops = source.find_drops();
        source
    }

    fn tok(&self, i: usize) -> &str {
        self.tokens.get(i).map_or("", |&(start, end)| &self.code[start..end])
    }

    fn is_identifier(&self, i: usize) -> bool {
        let token = self.tok(i);
        token.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') && !KEYWORDS.contains(&token)
    }

    /// The line of token `i`, from 1.
    fn line(&self, i: usize) -> usize {
        let offset = self.tokens.get(i).map_or(self.code.len(), |t| t.0);
        self.code[..offset].matches('\n').count() + 1
    }

    /// The index of the token that closes the one opening at `open`.
    fn closing(&self, open: usize) -> Option<usize> {
        let (opens, closes) = match self.tok(open) {
            "{" => ("{", "}"),
            "(" => ("(", ")"),
            "[" => ("[", "]"),
            _ => return None,
        };
        let mut depth = 0;
        for i in open..self.tokens.len() {
            match self.tok(i) {
                t if t == opens => depth += 1,
                t if t == closes => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Every `fn NAME` of the file that has a body.
    fn find_functions(&self) -> Vec<Function> {
        let blocks: Vec<(usize, usize)> = (0..self.tokens.len())
            .filter(|&i| matches!(self.tok(i), "impl" | "trait"))
            .filter_map(|at| {
                let open = (at..self.tokens.len()).find(|&i| matches!(self.tok(i), "{" | ";"))?;
                Some((open, self.closing(open)?))
            })
            .collect();
        let mut functions = Vec::new();
        for at in 0..self.tokens.len() {
            if self.tok(at) != "fn" || !self.is_identifier(at + 1) {
                continue;
            }
            // The body opens at the first `{` outside the parameters and
            // types; a `;` there first means a declaration without one.
            let mut depth = 0i32;
            let mut open = None;
            for i in at + 2..self.tokens.len() {
                match self.tok(i) {
                    "(" | "[" => depth += 1,
                    ")" | "]" => depth -= 1,
                    "{" if depth == 0 => {
                        open = Some(i);
                        break;
                    }
                    ";" if depth == 0 => break,
                    _ => {}
                }
            }
            if let Some(close) = open.and_then(|open| self.closing(open)) {
                let body = (open.unwrap_or(0) + 1, close);
                let method = blocks.iter().any(|&(from, to)| from < at && at < to);
                functions.push(Function { name: self.tok(at + 1).to_string(), at, body, method });
            }
        }
        functions
    }

    /// The names that `use` statements bring in under another name.
    fn find_aliases(&self) -> Vec<String> {
        let mut aliases = Vec::new();
        let mut in_use = false;
        for i in 0..self.tokens.len() {
            match self.tok(i) {
                "use" => in_use = true,
                ";" => in_use = false,
                "as" if in_use && self.is_identifier(i + 1) => aliases.push(self.tok(i + 1).to_string()),
                _ => {}
            }
        }
        aliases
    }

    /// `impl Drop for TYPE { fn drop ... }`: the type and its `drop`.
    fn find_drops(&self) -> Vec<(String, usize)> {
        let mut drops = Vec::new();
        for at in 0..self.tokens.len() {
            if self.tok(at) != "impl" {
                continue;
            }
            let Some(open) = (at..self.tokens.len()).find(|&i| matches!(self.tok(i), "{" | ";")) else {
                continue;
            };
            let header: Vec<&str> = (at..open).map(|i| self.tok(i)).collect();
            let Some(drop_at) = header.iter().position(|&t| t == "Drop") else { continue };
            if header.get(drop_at + 1) != Some(&"for") {
                continue;
            }
            let Some(type_at) = (at + drop_at + 2..open).find(|&i| self.is_identifier(i)) else { continue };
            let Some(close) = self.closing(open) else { continue };
            for (index, function) in self.functions.iter().enumerate() {
                if function.name == "drop" && function.at > open && function.at < close {
                    drops.push((self.tok(type_at).to_string(), index));
                }
            }
        }
        drops
    }

    fn function_named(&self, name: &str) -> Vec<usize> {
        (0..self.functions.len()).filter(|&f| self.functions[f].name == name).collect()
    }

    /// Whether the file defines a function `name` (with a body).
    pub fn defines(&self, name: &str) -> bool {
        !self.function_named(name).is_empty()
    }

    /// Whether every function `name` of the file has an empty body (comments
    /// are not tokens): a handler not written yet.
    pub fn is_empty(&self, name: &str) -> bool {
        let found = self.function_named(name);
        !found.is_empty() && found.iter().all(|&f| self.functions[f].body.0 >= self.functions[f].body.1)
    }

    /// The innermost function around token `i`.
    fn function_around(&self, i: usize) -> Option<&Function> {
        self.functions.iter().filter(|f| f.body.0 <= i && i < f.body.1).min_by_key(|f| f.body.1 - f.body.0)
    }

    /// The statements (between `;`, `{` and `}`) that mention `word`.
    fn statements_with(&self, word: &str) -> Vec<(usize, usize)> {
        let boundary = |t: &str| matches!(t, ";" | "{" | "}");
        (0..self.tokens.len())
            .filter(|&i| self.tok(i) == word)
            .map(|at| {
                let start = (0..at).rev().find(|&i| boundary(self.tok(i))).map_or(0, |i| i + 1);
                let end =
                    (at..self.tokens.len()).find(|&i| boundary(self.tok(i))).unwrap_or(self.tokens.len());
                (start, end)
            })
            .collect()
    }

    /// The functions of the file named as handlers in tokens `range`:
    /// `Handler(NAME)`, `SigAction(NAME)`, `NAME as`.
    fn handlers_named_in(&self, (start, end): (usize, usize)) -> Vec<String> {
        let mut names = Vec::new();
        for i in start..end {
            let named = if matches!(self.tok(i), "Handler" | "SigAction") && self.tok(i + 1) == "(" {
                i + 2
            } else if self.tok(i + 1) == "as" && i + 1 < end {
                i
            } else {
                continue;
            };
            let name = self.tok(named);
            if self.is_identifier(named) && self.defines(name) && !names.iter().any(|n| n == name) {
                names.push(name.to_string());
            }
        }
        names
    }

    /// The function installed for `signal` (`SIGTERM`): the one named in
    /// a statement that mentions the signal or, failing that, in the
    /// function around it if that function mentions no other signal the
    /// lab handles; else `default`, if the file defines it.
    pub fn handler_for(&self, signal: &str, default: &str) -> Option<String> {
        let statements = self.statements_with(signal);
        let named = statements.iter().find_map(|&range| self.handlers_named_in(range).into_iter().next());
        let around = || {
            statements.iter().find_map(|&(start, _)| {
                let function = self.function_around(start)?;
                let (from, to) = function.body;
                let others = ["SIGCHLD", "SIGPIPE", "SIGTERM"].iter().filter(|&&s| s != signal);
                let alone = !(from..to).any(|i| others.clone().any(|&s| self.tok(i) == s));
                alone.then(|| self.handlers_named_in(function.body).into_iter().next()).flatten()
            })
        };
        named.or_else(around).or_else(|| self.defines(default).then(|| default.to_string()))
    }

    /// Every function the kernel may run as a handler, in the file's
    /// order: each `extern "C" fn`, each function named as a handler.
    pub fn handlers(&self) -> Vec<String> {
        let named = self.handlers_named_in((0, self.tokens.len()));
        let mut handlers: Vec<String> = Vec::new();
        for function in &self.functions {
            let at = function.at;
            let extern_c = self.tok(at.wrapping_sub(1)) == "extern"
                || (self.tok(at.wrapping_sub(1)) == "\""
                    && self.tok(at.wrapping_sub(2)) == "\""
                    && self.tok(at.wrapping_sub(3)) == "extern");
            if (extern_c || named.contains(&function.name)) && !handlers.contains(&function.name) {
                handlers.push(function.name.clone());
            }
        }
        handlers
    }

    /// The line where `word` first appears, if it does.
    pub fn line_of(&self, word: &str) -> Option<usize> {
        (0..self.tokens.len()).find(|&i| self.tok(i) == word).map(|i| self.line(i))
    }

    /// The line of a statement that sets `signal` to be ignored
    /// (`SigIgn`, `SIG_IGN`), if one does.
    pub fn ignored(&self, signal: &str) -> Option<usize> {
        self.statements_with(signal).into_iter().find_map(|(start, end)| {
            (start..end).find(|&i| matches!(self.tok(i), "SigIgn" | "SIG_IGN")).map(|i| self.line(i))
        })
    }

    /// The token ranges of the loops (`loop`, `while`, `for`, from the
    /// keyword to the end of the body, the condition included) in
    /// `range`.
    fn loops_in(&self, (start, end): (usize, usize)) -> Vec<(usize, usize)> {
        let mut loops = Vec::new();
        for at in start..end {
            if !matches!(self.tok(at), "loop" | "while" | "for") {
                continue;
            }
            // The body is the first block at the keyword's own level that
            // is not an `unsafe { ... }` of the condition.
            let mut i = at + 1;
            let mut depth = 0i32;
            while i < end {
                match self.tok(i) {
                    "(" | "[" => depth += 1,
                    ")" | "]" => depth -= 1,
                    "{" if depth == 0 && self.tok(i - 1) == "unsafe" => {
                        i = self.closing(i).unwrap_or(end);
                    }
                    "{" if depth == 0 => {
                        loops.push((at, self.closing(i).unwrap_or(end)));
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        loops
    }

    /// Reads the handler `name` and everything it runs.
    pub fn read(&self, name: &str) -> Reading {
        let mut reading = Reading::default();
        let mut calls = Vec::new();
        // (function, shown as, reached inside a loop)
        let mut to_read: Vec<(usize, String, bool)> =
            self.function_named(name).into_iter().map(|f| (f, name.to_string(), false)).collect();
        let mut looped: Vec<(usize, bool)> = Vec::new();
        loop {
            while let Some((function, via, in_loop)) = to_read.pop() {
                match looped.iter_mut().find(|(f, _)| *f == function) {
                    Some((_, was)) if *was || !in_loop => continue,
                    Some((_, was)) => *was = true,
                    None => looped.push((function, in_loop)),
                }
                if !reading.read.contains(&function) {
                    reading.read.push(function);
                }
                self.read_function(function, &via, in_loop, &mut calls, &mut reading.waits, &mut to_read);
            }
            // The drop of a type of the file, once what is read names it.
            let named = |ty: &str| {
                reading.read.iter().any(|&f| {
                    let function = &self.functions[f];
                    (function.at..function.body.1).any(|i| self.tok(i) == ty)
                })
            };
            let next = self.drops.iter().find(|(ty, f)| !reading.read.contains(f) && named(ty));
            match next {
                Some((ty, f)) => to_read.push((*f, format!("{ty}::drop"), false)),
                None => break,
            }
        }
        // The gravest first, each name once, a few at most.
        calls.sort_by_key(|c: &Call| (c.kind, c.line));
        let mut seen = Vec::new();
        calls.retain(|c| {
            let new = !seen.contains(&c.name);
            seen.push(c.name.clone());
            new
        });
        calls.truncate(4);
        reading.calls = calls;
        reading
    }

    fn read_function(
        &self,
        function: usize,
        via: &str,
        in_loop: bool,
        calls: &mut Vec<Call>,
        waits: &mut Vec<Wait>,
        to_read: &mut Vec<(usize, String, bool)>,
    ) {
        let body = self.functions[function].body;
        let loops = self.loops_in(body);
        let looped = |i: usize| in_loop || loops.iter().any(|&(from, to)| from < i && i < to);
        for i in body.0..body.1 {
            let token = self.tok(i);
            let line = self.line(i);
            let mut report =
                |name: Option<String>, kind| calls.push(Call { name, via: via.to_string(), line, kind });
            // A call of what an expression gives: `(f)(..)`, `TABLE[0](..)`.
            if token == "(" && matches!(self.tok(i.wrapping_sub(1)), ")" | "]") {
                report(None, Kind::Unsafe);
                continue;
            }
            if !self.is_identifier(i) {
                continue;
            }
            let next = |k: usize| self.tok(i + k);
            let method = self.tok(i.wrapping_sub(1)) == ".";
            let after_path = self.tok(i.wrapping_sub(1)) == ":" && self.tok(i.wrapping_sub(2)) == ":";
            let mut after = 1;
            // A turbofish: name::<T>(...)
            if next(1) == ":" && next(2) == ":" && next(3) == "<" {
                let mut depth = 0;
                for k in 3.. {
                    match next(k) {
                        "<" => depth += 1,
                        ">" => {
                            depth -= 1;
                            if depth == 0 {
                                after = k + 1;
                                break;
                            }
                        }
                        "" => break,
                        _ => {}
                    }
                }
            }
            let is_macro = next(1) == "!" && matches!(next(2), "(" | "[" | "{");
            if !is_macro && next(after) != "(" {
                continue;
            }
            if is_macro {
                let kind = if ENDS.contains(&token) { Kind::Ends } else { Kind::Unsafe };
                report(Some(format!("{token}!")), kind);
                continue;
            }
            // `name(..)` calls a function of the file, not a method of it
            // (`drop(x)` is not the `drop` of a Drop impl); `.name(..)` and
            // `Path::name(..)` may call either.
            let defined: Vec<usize> = self
                .function_named(token)
                .into_iter()
                .filter(|&f| method || after_path || !self.functions[f].method)
                .collect();
            if !defined.is_empty() {
                for f in defined {
                    to_read.push((f, token.to_string(), looped(i)));
                }
                continue;
            }
            let variant = after_path
                && token.starts_with(|c: char| c.is_ascii_uppercase())
                && !self.constants.iter().any(|c| c == token);
            let kind = if self.aliases.iter().any(|a| a == token) {
                Some(Kind::Unsafe)
            } else if ENDS.contains(&token) {
                Some(Kind::Ends)
            } else if CLOSES.contains(&token) {
                Some(Kind::Closes)
            } else if method {
                (!METHODS.contains(&token)).then_some(Kind::Unsafe)
            } else if FUNCTIONS.contains(&token) || variant || (after_path && PATH_FUNCTIONS.contains(&token))
            {
                None
            } else {
                Some(Kind::Unsafe)
            };
            if let Some(kind) = kind {
                report(Some(token.to_string()), kind);
            } else if WAITS.contains(&token) && !method {
                waits.push(Wait { name: token.to_string(), line, in_loop: looped(i) });
            }
        }
    }

    /// The calls of the wait family that are not in what `reading` read:
    /// (name, line, the function around it).
    pub fn waits_outside(&self, reading: &Reading) -> Vec<(String, usize, String)> {
        let inside = |i: usize| {
            reading.read.iter().any(|&f| {
                let body = self.functions[f].body;
                body.0 <= i && i < body.1
            })
        };
        (0..self.tokens.len())
            .filter(|&i| {
                WAITS.contains(&self.tok(i))
                    && self.tok(i + 1) == "("
                    && self.tok(i.wrapping_sub(1)) != "."
                    && self.tok(i.wrapping_sub(1)) != "fn"
                    && !inside(i)
            })
            .map(|i| {
                let around = self.function_around(i).map_or(String::new(), |f| f.name.clone());
                (self.tok(i).to_string(), self.line(i), around)
            })
            .collect()
    }
}

/// The source with comments, string and character literals replaced by
/// spaces (newlines kept, so offsets and line numbers hold).
fn code_only(source: &str) -> String {
    let bytes = source.as_bytes();
    let mut out = bytes.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for b in &mut out[from.min(bytes.len())..to.min(bytes.len())] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    };
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            let end = rest.iter().position(|&b| b == b'\n').map_or(bytes.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0, i);
            while j < bytes.len() {
                if bytes[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if bytes[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (rest[0] == b'r' || rest.starts_with(b"br"))
            && (i == 0 || !ident(bytes[i - 1]))
            && raw_string_hashes(rest).is_some()
        {
            let start = if rest[0] == b'b' { i + 2 } else { i + 1 };
            let hashes = raw_string_hashes(&bytes[start - 1..]).unwrap_or(0);
            let mut closing = vec![b'"'];
            closing.extend(std::iter::repeat_n(b'#', hashes));
            let open = start + hashes + 1;
            let end = bytes[open.min(bytes.len())..]
                .windows(closing.len())
                .position(|w| w == closing)
                .map_or(bytes.len(), |n| open + n);
            blank(&mut out, open, end);
            i = end + closing.len();
        } else if rest[0] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i + 1, j);
            i = j + 1;
        } else if rest[0] == b'\'' {
            // A character literal ('x', '\n', '\u{41}', 'é'), or a
            // lifetime ('a), which stays.
            let end = if rest.get(1) == Some(&b'\\') {
                rest.iter().skip(2).position(|&b| b == b'\'').map(|n| i + 2 + n)
            } else {
                let width = std::str::from_utf8(&rest[1..rest.len().min(5)])
                    .or_else(|e| std::str::from_utf8(&rest[1..1 + e.valid_up_to()]))
                    .ok()
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                (rest.get(1 + width) == Some(&b'\'')).then_some(i + 1 + width)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i + 1, end);
                    i = end + 1;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// For `r"`, `r#"`, `r##"`... at the start of `text`: how many `#`.
fn raw_string_hashes(text: &[u8]) -> Option<usize> {
    let text = text.strip_prefix(b"b").unwrap_or(text).strip_prefix(b"r")?;
    let hashes = text.iter().take_while(|&&b| b == b'#').count();
    (text.get(hashes) == Some(&b'"')).then_some(hashes)
}

/// The byte ranges of identifiers (a raw `r#name` as `name`) and of single
/// punctuation characters.
fn tokens(code: &str) -> Vec<(usize, usize)> {
    let mut tokens = Vec::new();
    let bytes = code.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if word(b) {
            let raw = bytes[i..].starts_with(b"r#") && bytes.get(i + 2).is_some_and(|&b| word(b));
            let start = if raw { i + 2 } else { i };
            let mut j = start;
            while j < bytes.len() && word(bytes[j]) {
                j += 1;
            }
            tokens.push((start, j));
            i = j;
        } else if b.is_ascii_whitespace() {
            i += 1;
        } else {
            tokens.push((i, i + 1));
            i += 1;
        }
    }
    tokens
}
