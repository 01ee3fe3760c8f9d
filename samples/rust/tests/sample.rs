//! The sample prints what the C library's CLI prints for the same options.

#[path = "../../../bindings/rust/eurollm/tests/common/mod.rs"]
mod common;

use std::process::Command;

fn sample(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_generate")).args(args).output().expect("run the sample")
}

#[test]
fn sample_output_equals_the_c_cli() {
    let test = "sample_output_equals_the_c_cli";
    let (Some(dir), Some(cli)) = (common::stories(test), common::cli(test)) else {
        return;
    };
    let d = dir.to_string_lossy();
    let cases: &[&[&str]] = &[
        &["--temp", "0", "-n", "60"],
        &["-p", "Once upon a time", "--temp", "0.8", "--seed", "42", "-n", "60"],
        &["-p", "Lily", "--temp", "0", "-n", "80", "--stop", "."],
        &[
            "-p",
            "The dog",
            "--temp",
            "1",
            "--seed",
            "3",
            "--top-k",
            "0",
            "--top-p",
            "1",
            "--min-p",
            "0",
            "-n",
            "50",
            "--ignore-eos",
        ],
    ];
    for opts in cases {
        let mut args = vec![d.as_ref()];
        args.extend_from_slice(opts);
        let out = sample(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let mut cli_args = vec!["generate"];
        cli_args.extend_from_slice(&args);
        let expected = common::run_cli(&cli, &cli_args);
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected, "options {opts:?}");
    }
}

#[test]
fn sample_reports_errors_with_a_status() {
    let out = sample(&["/no/such/model", "-n", "5"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("i/o error"), "{err}");
    let out = sample(&["-n"]);
    assert_eq!(out.status.code(), Some(2));
}
