//! Finds libeurollm.so and links it dynamically. In order:
//!
//! 1. `EUROLLM_LIB_DIR`: a directory holding `libeurollm.so` (e.g. a CMake build dir);
//! 2. pkg-config (`eurollm.pc`, installed by `cmake --install`), unless `EUROLLM_NO_PKG_CONFIG`
//!    is set, with a version of the same ABI major and at least the header's;
//! 3. the libeurollm source tree this crate sits in (`bindings/rust/eurollm-sys`): configured
//!    with CMake and built into `OUT_DIR` (only the library target).
//!
//! The library is reached through symlinks in `OUT_DIR/lib`, so that `cargo test` and `cargo run`
//! find it at run time (cargo puts search paths inside the target directory on the loader path).
//! Programs run outside cargo need the library on the loader path (LD_LIBRARY_PATH, an installed
//! copy, or an rpath: `DEP_EUROLLM_LIB_DIR` is exported to dependent build scripts).

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const LIB_NAME: &str = "eurollm";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["EUROLLM_LIB_DIR", "EUROLLM_NO_PKG_CONFIG", "EUROLLM_CMAKE_ARGS", "PKG_CONFIG_PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // docs.rs and `cargo doc` users without the library: declarations need no linking.
    if env::var_os("DOCS_RS").is_some() {
        return;
    }

    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let repo = manifest_dir.join("../../..");

    let (lib_dir, include_dir) = if let Some(dir) = env::var_os("EUROLLM_LIB_DIR") {
        let dir = PathBuf::from(dir);
        if !has_library(&dir) {
            fail(&format!("EUROLLM_LIB_DIR={} holds no {}", dir.display(), lib_file_name()));
        }
        let include = repo.join("capi");
        (dir, include.exists().then_some(include))
    } else if let Some((dir, include)) = from_pkg_config(&manifest_dir) {
        (dir, include)
    } else if repo.join("CMakeLists.txt").exists() && repo.join("capi/eurollm.h").exists() {
        (build_with_cmake(&repo, &out_dir), Some(repo.join("capi")))
    } else {
        fail(
            "libeurollm not found: set EUROLLM_LIB_DIR to the directory of libeurollm.so, install it \
             where pkg-config finds eurollm.pc, or build this crate inside the libeurollm repository",
        );
    };

    let link_dir = out_dir.join("lib");
    mirror_library(&lib_dir, &link_dir);
    println!("cargo:rustc-link-search=native={}", link_dir.display());
    println!("cargo:rustc-link-lib=dylib={LIB_NAME}");
    // Metadata for dependents' build scripts: DEP_EUROLLM_LIB_DIR, DEP_EUROLLM_INCLUDE.
    println!("cargo:lib_dir={}", lib_dir.display());
    if let Some(inc) = include_dir {
        println!("cargo:include={}", inc.display());
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("eurollm-sys: {msg}");
    panic!("eurollm-sys: {msg}");
}

fn lib_file_name() -> String {
    if cfg!(target_os = "macos") {
        format!("lib{LIB_NAME}.dylib")
    } else if cfg!(windows) {
        format!("{LIB_NAME}.lib")
    } else {
        format!("lib{LIB_NAME}.so")
    }
}

fn has_library(dir: &Path) -> bool {
    dir.join(lib_file_name()).exists()
}

/// The version the committed declarations were generated from (EUROLLM_VERSION_MAJOR/MINOR/PATCH).
fn header_version(manifest_dir: &Path) -> Option<(u64, u64, u64)> {
    let text = fs::read_to_string(manifest_dir.join("src/bindings.rs")).ok()?;
    let get = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.contains(&format!("const {name}:")))?;
        line.rsplit('=').next()?.trim().trim_end_matches(';').trim().parse().ok()
    };
    Some((get("EUROLLM_VERSION_MAJOR")?, get("EUROLLM_VERSION_MINOR")?, get("EUROLLM_VERSION_PATCH")?))
}

fn from_pkg_config(manifest_dir: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
    if env::var_os("EUROLLM_NO_PKG_CONFIG").is_some() {
        return None;
    }
    let mut cfg = pkg_config::Config::new();
    cfg.cargo_metadata(false).env_metadata(true);
    if let Some((major, minor, patch)) = header_version(manifest_dir) {
        // Symbols are only ever added within one ABI major: same major, at least this version.
        cfg.range_version(format!("{major}.{minor}.{patch}").as_str()..format!("{}.0.0", major + 1).as_str());
    }
    let lib = cfg.probe(LIB_NAME).ok()?;
    let dir = lib.link_paths.iter().find(|d| has_library(d)).cloned()?;
    Some((dir, lib.include_paths.first().cloned()))
}

/// Configure and build the `eurollm` target of the repository into OUT_DIR/cmake-build.
fn build_with_cmake(repo: &Path, out_dir: &Path) -> PathBuf {
    for dir in ["capi", "src", "kernels", "cmake", "proto"] {
        if repo.join(dir).exists() {
            println!("cargo:rerun-if-changed={}", repo.join(dir).display());
        }
    }
    println!("cargo:rerun-if-changed={}", repo.join("CMakeLists.txt").display());
    let build = out_dir.join("cmake-build");
    let mut configure = Command::new("cmake");
    configure.arg("-S").arg(repo).arg("-B").arg(&build);
    configure.args(["-DEUROLLM_BUILD_TESTS=OFF", "-DEUROLLM_BUILD_CLI=OFF", "-DCMAKE_BUILD_TYPE=Release"]);
    if Command::new("ninja").arg("--version").output().is_ok() && !build.join("Makefile").exists() {
        configure.args(["-G", "Ninja"]);
    }
    if let Ok(extra) = env::var("EUROLLM_CMAKE_ARGS") {
        configure.args(extra.split_whitespace());
    }
    run(&mut configure, "cmake configure");
    let jobs = env::var("NUM_JOBS").unwrap_or_else(|_| "2".into());
    run(
        Command::new("cmake").arg("--build").arg(&build).args(["--target", LIB_NAME, "--parallel", &jobs]),
        "cmake --build",
    );
    if !has_library(&build) {
        fail(&format!("the CMake build did not produce {} in {}", lib_file_name(), build.display()));
    }
    build
}

fn run(cmd: &mut Command, what: &str) {
    match cmd.status() {
        Ok(s) if s.success() => {}
        Ok(s) => fail(&format!("{what} failed ({s}): {cmd:?}")),
        Err(e) => fail(&format!("{what} could not start ({e}); is CMake installed? {cmd:?}")),
    }
}

/// Symlink (or copy) libeurollm.so and its versioned names into `to`.
fn mirror_library(from: &Path, to: &Path) {
    let _ = fs::remove_dir_all(to);
    fs::create_dir_all(to).unwrap();
    let stem = lib_file_name();
    let from = fs::canonicalize(from).unwrap_or_else(|_| from.to_path_buf());
    for entry in fs::read_dir(&from).unwrap().flatten() {
        let name = entry.file_name();
        let name_s = name.to_string_lossy();
        if name_s == stem || name_s.starts_with(&format!("{stem}.")) {
            let src = from.join(&name);
            let dst = to.join(&name);
            #[cfg(unix)]
            let linked = std::os::unix::fs::symlink(&src, &dst).is_ok();
            #[cfg(not(unix))]
            let linked = false;
            if !linked {
                fs::copy(&src, &dst).unwrap();
            }
        }
    }
}
