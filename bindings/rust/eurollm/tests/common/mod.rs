//! Shared by the integration tests (and samples/rust/tests): locating the stories260K model and the
//! C library's `eurollm` CLI, and saying when a test skips.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Print a skip notice that `cargo test`'s output capture does not swallow.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIP {test}: {why}");
}

/// `EUROLLM_STORIES_DIR`, else `<repo>/../shared/models/stories260K`; `None` (after a skip notice
/// for `test`) when absent.
pub fn stories(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("EUROLLM_STORIES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/models/stories260K"));
    if dir.join("config.json").exists() {
        Some(dir)
    } else {
        skip(test, &format!("stories260K not found at {} (set EUROLLM_STORIES_DIR)", dir.display()));
        None
    }
}

/// The libeurollm checkout: the nearest ancestor of this package holding capi/eurollm.h.
pub fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).canonicalize().unwrap();
    here.ancestors()
        .find(|d| d.join("capi/eurollm.h").exists())
        .unwrap_or_else(|| panic!("no libeurollm checkout above {}", here.display()))
        .to_path_buf()
}

/// The C library's command-line tool (`eurollm`, built by the same CMake project):
/// `EUROLLM_CLI`, else `$EUROLLM_LIB_DIR/eurollm`. `None` (after a skip notice) when absent.
pub fn cli(test: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("EUROLLM_CLI").map(PathBuf::from),
        std::env::var_os("EUROLLM_LIB_DIR").map(|d| PathBuf::from(d).join("eurollm")),
    ];
    for c in candidates.into_iter().flatten() {
        if c.is_file() {
            return Some(c);
        }
    }
    skip(test, "the eurollm CLI was not found (set EUROLLM_CLI, or EUROLLM_LIB_DIR to a CMake build dir with it)");
    None
}

/// Run the CLI; its stdout, or a panic with its stderr.
pub fn run_cli(cli: &PathBuf, args: &[&str]) -> String {
    let out = Command::new(cli).args(args).output().expect("run the eurollm CLI");
    assert!(out.status.success(), "{} {:?} failed: {}", cli.display(), args, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("CLI output is UTF-8")
}

/// A value from config.json (a flat JSON object) read as text: an independent reference.
pub fn config_value(dir: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let pat = format!("\"{key}\"");
    let at = text.find(&pat)? + pat.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = rest.find([',', '}', '\n']).unwrap_or(rest.len());
    Some(rest[..end].trim().trim_matches('"').to_string())
}

/// A golden file of the repository (tests/data/golden/NAME), parsed; `None` (after a skip notice)
/// when absent.
pub fn golden(test: &str, name: &str) -> Option<json::Value> {
    let path = repo_root().join("tests/data/golden").join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(json::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))),
        Err(_) => {
            skip(test, &format!("golden file {} not found", path.display()));
            None
        }
    }
}

/// A small JSON reader for the golden files (no dependency needed for that).
pub mod json {
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Bool(bool),
        Num(f64),
        Str(String),
        Arr(Vec<Value>),
        Obj(Vec<(String, Value)>),
    }

    impl Value {
        pub fn get(&self, key: &str) -> &Value {
            match self {
                Value::Obj(m) => &m.iter().find(|(k, _)| k == key).unwrap_or_else(|| panic!("no key {key}")).1,
                _ => panic!("not an object"),
            }
        }
        pub fn arr(&self) -> &[Value] {
            match self {
                Value::Arr(a) => a,
                _ => panic!("not an array"),
            }
        }
        pub fn num(&self) -> f64 {
            match self {
                Value::Num(n) => *n,
                _ => panic!("not a number"),
            }
        }
        pub fn str(&self) -> &str {
            match self {
                Value::Str(s) => s,
                _ => panic!("not a string"),
            }
        }
        pub fn f32s(&self) -> Vec<f32> {
            self.arr().iter().map(|v| v.num() as f32).collect()
        }
        pub fn i32s(&self) -> Vec<i32> {
            self.arr().iter().map(|v| v.num() as i32).collect()
        }
    }

    pub fn parse(text: &str) -> Result<Value, String> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing data at {}", p.i));
        }
        Ok(v)
    }

    struct Parser<'a> {
        s: &'a [u8],
        i: usize,
    }

    impl Parser<'_> {
        fn ws(&mut self) {
            while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
                self.i += 1;
            }
        }
        fn eat(&mut self, c: u8) -> Result<(), String> {
            self.ws();
            if self.s.get(self.i) == Some(&c) {
                self.i += 1;
                Ok(())
            } else {
                Err(format!("expected '{}' at {}", c as char, self.i))
            }
        }
        fn value(&mut self) -> Result<Value, String> {
            self.ws();
            match self.s.get(self.i).copied() {
                Some(b'{') => {
                    self.i += 1;
                    let mut m = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b'}') {
                        self.i += 1;
                        return Ok(Value::Obj(m));
                    }
                    loop {
                        self.ws();
                        let k = self.string()?;
                        self.eat(b':')?;
                        m.push((k, self.value()?));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                return Ok(Value::Obj(m));
                            }
                            _ => return Err(format!("bad object at {}", self.i)),
                        }
                    }
                }
                Some(b'[') => {
                    self.i += 1;
                    let mut a = Vec::new();
                    self.ws();
                    if self.s.get(self.i) == Some(&b']') {
                        self.i += 1;
                        return Ok(Value::Arr(a));
                    }
                    loop {
                        a.push(self.value()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                return Ok(Value::Arr(a));
                            }
                            _ => return Err(format!("bad array at {}", self.i)),
                        }
                    }
                }
                Some(b'"') => Ok(Value::Str(self.string()?)),
                Some(b't') if self.s[self.i..].starts_with(b"true") => {
                    self.i += 4;
                    Ok(Value::Bool(true))
                }
                Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                    self.i += 5;
                    Ok(Value::Bool(false))
                }
                Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                    self.i += 4;
                    Ok(Value::Null)
                }
                Some(_) => {
                    let start = self.i;
                    while self.i < self.s.len() && b"+-0123456789.eE".contains(&self.s[self.i]) {
                        self.i += 1;
                    }
                    let t = std::str::from_utf8(&self.s[start..self.i]).unwrap();
                    t.parse().map(Value::Num).map_err(|_| format!("bad number '{t}' at {start}"))
                }
                None => Err("unexpected end".into()),
            }
        }
        fn string(&mut self) -> Result<String, String> {
            self.eat(b'"')?;
            let mut out = String::new();
            loop {
                let c = *self.s.get(self.i).ok_or("unterminated string")?;
                self.i += 1;
                match c {
                    b'"' => return Ok(out),
                    b'\\' => {
                        let e = *self.s.get(self.i).ok_or("bad escape")?;
                        self.i += 1;
                        match e {
                            b'n' => out.push('\n'),
                            b't' => out.push('\t'),
                            b'r' => out.push('\r'),
                            b'b' => out.push('\u{8}'),
                            b'f' => out.push('\u{c}'),
                            b'u' => {
                                let hex = std::str::from_utf8(&self.s[self.i..self.i + 4]).unwrap();
                                self.i += 4;
                                let mut cp = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                                if (0xD800..0xDC00).contains(&cp) && self.s[self.i..].starts_with(b"\\u") {
                                    let lo = std::str::from_utf8(&self.s[self.i + 2..self.i + 6]).unwrap();
                                    let lo = u32::from_str_radix(lo, 16).map_err(|e| e.to_string())?;
                                    self.i += 6;
                                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                                }
                                out.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                            }
                            other => out.push(other as char),
                        }
                    }
                    _ => {
                        // Copy the UTF-8 sequence that starts here.
                        let start = self.i - 1;
                        while self.i < self.s.len() && (self.s[self.i] & 0xC0) == 0x80 {
                            self.i += 1;
                        }
                        out.push_str(std::str::from_utf8(&self.s[start..self.i]).map_err(|e| e.to_string())?);
                    }
                }
            }
        }
    }
}
