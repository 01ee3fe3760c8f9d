//! Bad input gives an Err with the library's status and message, never a crash, and leaves the
//! objects usable.

mod common;

use std::path::PathBuf;

use eurollm::{Context, ContextParams, Device, ErrorKind, GeneratorParams, Model, ModelParams, TokenizeFlags};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("eurollm-rs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn missing_model_is_an_io_error_with_a_message() {
    let err = Model::load("/definitely/not/a/model/dir").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
    assert_eq!(err.status(), eurollm::sys::eurollm_status::EUROLLM_ERR_IO.0);
    assert!(!err.message().is_empty());
    assert!(err.to_string().contains(err.message()));
    assert!(err.to_string().starts_with(&eurollm::status_string(err.status())));
}

#[test]
fn empty_path_and_interior_nul_are_invalid_arguments() {
    assert_eq!(Model::load("").unwrap_err().kind(), ErrorKind::InvalidArgument);
    let err = Model::load("models/a\0b").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("NUL"), "{err}");
}

#[test]
fn corrupt_model_files_are_errors() {
    // config.json that is not JSON.
    let d = temp_dir("badjson");
    std::fs::write(d.join("config.json"), "{ this is not json").unwrap();
    let err = Model::load(&d).unwrap_err();
    assert!(matches!(err.kind(), ErrorKind::BadModel | ErrorKind::Io), "{err}");

    // A real config with a truncated safetensors file.
    if let Some(src) = common::stories("corrupt_model_files_are_errors") {
        let d = temp_dir("truncated");
        for f in ["config.json", "tokenizer.model", "tokenizer_config.json", "generation_config.json"] {
            if src.join(f).exists() {
                std::fs::copy(src.join(f), d.join(f)).unwrap();
            }
        }
        let weights = std::fs::read(src.join("model.safetensors")).unwrap();
        std::fs::write(d.join("model.safetensors"), &weights[..weights.len() / 2]).unwrap();
        let err = Model::load(&d).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadModel, "{err}");
        // A header length pointing past the end of the file.
        let mut bad = weights.clone();
        bad[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        std::fs::write(d.join("model.safetensors"), &bad).unwrap();
        let err = Model::load(&d).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BadModel, "{err}");
        let _ = std::fs::remove_dir_all(&d);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_gpu_this_build_lacks_is_unsupported() {
    let Some(dir) = common::stories("a_gpu_this_build_lacks_is_unsupported") else { return };
    if eurollm::device_count(Device::Cuda) > 0 {
        common::skip("a_gpu_this_build_lacks_is_unsupported", "this build has CUDA");
        return;
    }
    let err = Model::load_with(&dir, &ModelParams::default().device(Device::Cuda)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    let err = Model::load_with(&dir, &ModelParams::default().device(Device::Cpu).device_index(-1)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}

#[test]
fn device_names_and_memory() {
    assert_eq!(eurollm::device_name(Device::Cpu, 0).unwrap(), "cpu");
    assert_eq!(eurollm::device_memory(Device::Cpu, 0).unwrap(), (0, 0));
    assert_eq!(eurollm::device_name(Device::Cpu, 1).unwrap_err().kind(), ErrorKind::InvalidArgument);
    for kind in [Device::Cuda, Device::Hip] {
        let n = eurollm::device_count(kind) as i32;
        for i in 0..n {
            assert!(!eurollm::device_name(kind, i).unwrap().is_empty());
            let (total, free) = eurollm::device_memory(kind, i).unwrap();
            assert!(free > 0 && free <= total, "{free} of {total}");
        }
        let err = eurollm::device_name(kind, n).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
        assert_eq!(eurollm::device_memory(kind, n).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
}

#[test]
fn bad_tokens_and_text_are_invalid_arguments() {
    let Some(dir) = common::stories("bad_tokens_and_text_are_invalid_arguments") else { return };
    let model = Model::load(&dir).unwrap();
    let n_vocab = model.n_vocab() as i32;

    let err = model.tokenize_bytes(b"caf\xc3", TokenizeFlags::NONE).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    let err = model.tokenize_with("x", TokenizeFlags::from_bits_retain(0x80)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
    assert_eq!(model.detokenize(&[5, n_vocab]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(model.detokenize(&[-1]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(model.token_to_piece(n_vocab).unwrap_err().kind(), ErrorKind::InvalidArgument);

    let mut ctx = Context::new(&model, &ContextParams::default()).unwrap();
    assert_eq!(ctx.decode(&[1, n_vocab]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(ctx.decode_all(&[-7]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    {
        let mut gen = ctx.generator(&GeneratorParams::greedy()).unwrap();
        assert_eq!(gen.append_tokens(&[1, i32::MAX]).unwrap_err().kind(), ErrorKind::InvalidArgument);
        assert_eq!(gen.add_stop_string("\u{0}ok").map(|_| ()), Ok(()), "a NUL inside a stop string is text");
        // The generator is still usable after the errors.
        gen.append_tokens(&[1]).unwrap();
        assert!(gen.step().unwrap().is_some());
    }
    // And so is the context.
    ctx.reset().unwrap();
    assert_eq!(ctx.decode(&[1]).unwrap().len(), n_vocab as usize);
}

#[test]
fn a_full_context_is_an_error_or_a_stop() {
    let Some(dir) = common::stories("a_full_context_is_an_error_or_a_stop") else { return };
    let model = Model::load(&dir).unwrap();
    let mut ctx = Context::new(&model, &ContextParams::default().n_ctx(16)).unwrap();
    assert_eq!(ctx.n_ctx(), 16);
    let too_long = vec![1i32; 17];
    assert_eq!(ctx.decode(&too_long).unwrap_err().kind(), ErrorKind::ContextFull);
    assert_eq!(ctx.n_past(), 0);
    {
        let mut gen = ctx.generator(&GeneratorParams::greedy().max_tokens(0).ignore_eos(true)).unwrap();
        assert_eq!(gen.append_tokens(&too_long).unwrap_err().kind(), ErrorKind::ContextFull);
        gen.append_tokens(&[1, 2, 3]).unwrap();
        let n = gen.tokens().collect::<eurollm::Result<Vec<i32>>>().unwrap().len();
        // The last sampled token needs no slot: it is never evaluated.
        assert!(n > 0 && n <= 16 - 3 + 1, "{n} tokens");
        assert_eq!(gen.stop_reason(), Some(eurollm::StopReason::ContextFull));
    }
}

#[test]
fn errors_are_per_thread_and_do_not_leak_into_later_calls() {
    let Some(dir) = common::stories("errors_are_per_thread_and_do_not_leak_into_later_calls") else { return };
    let model = Model::load(&dir).unwrap();
    let err = model.detokenize(&[100_000]).unwrap_err();
    assert!(!err.message().is_empty());
    // A successful call after it returns Ok, and an error on another thread has its own message.
    assert!(model.detokenize(&[5]).is_ok());
    let other = std::thread::scope(|s| s.spawn(|| Model::load("/nope/nope").unwrap_err()).join().unwrap());
    assert_eq!(other.kind(), ErrorKind::Io);
    assert_ne!(other.message(), err.message());
}
