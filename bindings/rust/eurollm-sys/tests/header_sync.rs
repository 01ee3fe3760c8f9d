//! The committed declarations (src/bindings.rs, src/experimental.rs) must be exactly what bindgen
//! makes from the headers in capi/ today. A header changed without regenerating them fails here.
//!
//! Regenerate: `EUROLLM_BLESS=1 cargo test -p eurollm-sys --test header_sync`.

#[allow(dead_code)]
mod codegen {
    include!("../codegen.rs");
}

use std::path::{Path, PathBuf};

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn capi_dir() -> PathBuf {
    let dir = crate_dir().join("../../../capi");
    assert!(
        dir.join("eurollm.h").exists(),
        "capi/eurollm.h not found at {}: this test runs inside the libeurollm repository",
        dir.display()
    );
    dir
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(a: &str, b: &str) -> String {
    let (la, lb): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
    for i in 0..la.len().max(lb.len()) {
        let (x, y) = (la.get(i).copied(), lb.get(i).copied());
        if x != y {
            return format!("line {}:\n  committed:   {:?}\n  from header: {:?}", i + 1, x, y);
        }
    }
    "(only line endings differ)".into()
}

fn check(t: &codegen::Target) {
    let expected = codegen::generate(&capi_dir(), t).unwrap_or_else(|e| panic!("{e}"));
    let path: PathBuf = crate_dir().join(t.output);
    if std::env::var_os("EUROLLM_BLESS").is_some_and(|v| v != "0") {
        std::fs::write(&path, &expected).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} is missing ({e}); regenerate: {}", path.display(), codegen::REGENERATE_HINT));
    assert!(
        committed == expected,
        "{} is out of date with capi/{}; regenerate: {}\nfirst difference at {}",
        rel(&path),
        t.header,
        codegen::REGENERATE_HINT,
        first_difference(&committed, &expected)
    );
}

fn rel(p: &Path) -> String {
    p.strip_prefix(crate_dir()).unwrap_or(p).display().to_string()
}

fn target(header: &str) -> &'static codegen::Target {
    codegen::TARGETS.iter().find(|t| t.header == header).unwrap()
}

#[test]
fn bindings_match_eurollm_h() {
    check(target("eurollm.h"));
}

#[test]
fn bindings_match_eurollm_experimental_h() {
    check(target("eurollm_experimental.h"));
}

/// Every public header in capi/ has a target, so a new header cannot go unbound silently.
#[test]
fn every_public_header_is_bound() {
    for entry in std::fs::read_dir(capi_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        // .h files only: eurollm.hpp is the C++ wrapper; api_guard.h is internal to the library.
        if name.ends_with(".h") && name.starts_with("eurollm") {
            assert!(
                codegen::TARGETS.iter().any(|t| t.header == name),
                "capi/{name} has no target in eurollm-sys/codegen.rs"
            );
        }
    }
}

/// The sync test must be able to fail: a header with one more declaration gives other bindings.
#[test]
fn a_changed_header_gives_different_bindings() {
    let dir = std::env::temp_dir().join(format!("eurollm-sys-sync-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let header = std::fs::read_to_string(capi_dir().join("eurollm.h")).unwrap();
    let changed = header.replacen(
        "#ifdef __cplusplus\n}",
        "EUROLLM_API int eurollm_sync_test_probe(void);\n\n#ifdef __cplusplus\n}",
        1,
    );
    assert_ne!(header, changed, "could not find the end of the extern \"C\" block in eurollm.h");
    std::fs::write(dir.join("eurollm.h"), changed).unwrap();
    let t = target("eurollm.h");
    let original = codegen::generate(&capi_dir(), t).unwrap_or_else(|e| panic!("{e}"));
    let modified = codegen::generate(&dir, t).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_dir_all(&dir).ok();
    assert!(!original.contains("eurollm_sync_test_probe"));
    assert!(modified.contains("pub fn eurollm_sync_test_probe()"));
}
