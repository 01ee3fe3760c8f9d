//! The ownership rules of the C API ("children are freed before their parent", "borrowed until the
//! next call", "one thread at a time") are compile errors in Rust. The `compile_fail` doctests
//! show them, but stable rustdoc does not check their error codes; this test compiles each
//! snippet against the built `eurollm` crate, requires the stated error code, and requires its
//! corrected twin to compile (so the snippet fails for that reason alone).

use std::path::{Path, PathBuf};
use std::process::Command;

struct Case {
    name: &'static str,
    /// Expected error code, and the snippet that must fail with it.
    code: &'static str,
    bad: &'static str,
    /// The same code with the rule respected: must compile.
    good: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "context used after its model is dropped",
        code: "E0505",
        bad: r#"
pub fn f(path: &str) -> eurollm::Result<()> {
    let model = eurollm::Model::load(path)?;
    let ctx = eurollm::Context::new(&model, &eurollm::ContextParams::default())?;
    drop(model);
    println!("{}", ctx.n_ctx());
    Ok(())
}"#,
        good: r#"
pub fn f(path: &str) -> eurollm::Result<()> {
    let model = eurollm::Model::load(path)?;
    let ctx = eurollm::Context::new(&model, &eurollm::ContextParams::default())?;
    println!("{}", ctx.n_ctx());
    drop(ctx);
    drop(model);
    Ok(())
}"#,
    },
    Case {
        name: "context returned past its model's scope",
        code: "E0515",
        bad: r#"
pub fn f(path: &str) -> eurollm::Result<eurollm::Context<'static>> {
    let model = eurollm::Model::load(path)?;
    let ctx = model.context(&eurollm::ContextParams::default())?;
    Ok(ctx)
}"#,
        good: r#"
pub fn f(model: &'static eurollm::Model) -> eurollm::Result<eurollm::Context<'static>> {
    let ctx = model.context(&eurollm::ContextParams::default())?;
    Ok(ctx)
}"#,
    },
    Case {
        name: "logits used after the next decode",
        code: "E0499",
        bad: r#"
pub fn f(ctx: &mut eurollm::Context<'_>) -> eurollm::Result<f32> {
    let logits = ctx.decode(&[1])?;
    ctx.decode(&[2])?;
    Ok(logits[0])
}"#,
        good: r#"
pub fn f(ctx: &mut eurollm::Context<'_>) -> eurollm::Result<f32> {
    let logits = ctx.decode(&[1])?.to_vec();
    ctx.decode(&[2])?;
    Ok(logits[0])
}"#,
    },
    Case {
        name: "context used while a generator lives on it",
        code: "E0499",
        bad: r#"
pub fn f(ctx: &mut eurollm::Context<'_>) -> eurollm::Result<()> {
    let mut gen = ctx.generator(&eurollm::GeneratorParams::default())?;
    ctx.reset()?;
    gen.step()?;
    Ok(())
}"#,
        good: r#"
pub fn f(ctx: &mut eurollm::Context<'_>) -> eurollm::Result<()> {
    let mut gen = ctx.generator(&eurollm::GeneratorParams::default())?;
    gen.step()?;
    drop(gen);
    ctx.reset()?;
    Ok(())
}"#,
    },
    Case {
        name: "text delta used after the next step",
        code: "E0502",
        bad: r#"
pub fn f(gen: &mut eurollm::Generator<'_>) -> eurollm::Result<String> {
    let t = gen.text_delta()?;
    gen.step()?;
    Ok(t.to_string())
}"#,
        good: r#"
pub fn f(gen: &mut eurollm::Generator<'_>) -> eurollm::Result<String> {
    let t = gen.text_delta()?.to_string();
    gen.step()?;
    Ok(t)
}"#,
    },
    Case {
        name: "a context shared between threads (not Sync)",
        code: "E0277",
        bad: r#"
fn shared<T: Sync>(_: &T) {}
pub fn f(ctx: &eurollm::Context<'_>) { shared(ctx) }"#,
        good: r#"
fn shared<T: Sync>(_: &T) {}
fn sent<T: Send>(_: T) {}
pub fn f(model: &eurollm::Model, ctx: eurollm::Context<'_>) { shared(model); sent(ctx) }"#,
    },
    Case {
        name: "a generator sent to another thread (not Send)",
        code: "E0277",
        bad: r#"
fn sent<T: Send>(_: T) {}
pub fn f(gen: eurollm::Generator<'_>) { sent(gen) }"#,
        good: r#"
pub fn f(gen: eurollm::Generator<'_>) { drop(gen) }"#,
    },
];

fn deps_dir() -> PathBuf {
    std::env::current_exe().unwrap().parent().unwrap().to_path_buf()
}

/// The newest libeurollm-*.rlib next to this test binary.
fn eurollm_rlib(deps: &Path) -> PathBuf {
    std::fs::read_dir(deps)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("libeurollm-") && n.ends_with(".rlib")
        })
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("libeurollm-*.rlib not found beside the test binary")
}

/// The rustc of the toolchain whose cargo built this test.
fn rustc() -> PathBuf {
    if let Some(cargo) = option_env!("CARGO") {
        let sibling = Path::new(cargo).with_file_name("rustc");
        if sibling.exists() {
            return sibling;
        }
    }
    PathBuf::from(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
}

/// Compile `src` as a library against eurollm (metadata only): (success, stderr).
fn compile(src: &str, tag: &str) -> (bool, String) {
    let deps = deps_dir();
    let dir = std::env::temp_dir().join(format!("eurollm-borrow-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("snippet.rs");
    std::fs::write(&file, src).unwrap();
    let out = Command::new(rustc())
        .args(["--edition", "2021", "--crate-type", "lib", "--crate-name", "snippet", "--emit", "metadata"])
        .arg("--extern")
        .arg(format!("eurollm={}", eurollm_rlib(&deps).display()))
        .arg("-L")
        .arg(format!("dependency={}", deps.display()))
        .arg("--out-dir")
        .arg(&dir)
        .arg(&file)
        .output()
        .expect("run rustc");
    let _ = std::fs::remove_dir_all(&dir);
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn borrow_rules_are_compile_errors_with_the_stated_code() {
    for (i, case) in CASES.iter().enumerate() {
        let (ok, stderr) = compile(case.good, &format!("{i}-good"));
        assert!(ok, "{}: the corrected snippet does not compile:\n{stderr}", case.name);
        let (ok, stderr) = compile(case.bad, &format!("{i}-bad"));
        assert!(!ok, "{}: compiled, but must not", case.name);
        assert!(
            stderr.contains(&format!("error[{}]", case.code)),
            "{}: expected error {}, got:\n{stderr}",
            case.name,
            case.code
        );
    }
}
