//! GGUF export, quantize-at-load, the precision option and the f16 KV cache through the safe crate.

mod common;

use eurollm::{Context, ContextParams, ErrorKind, Model, ModelParams, Precision, WeightType};

fn logits(model: &Model, params: &ContextParams, tokens: &[i32]) -> Vec<f32> {
    let mut ctx = Context::new(model, &params.clone().n_ctx(128)).unwrap();
    ctx.decode_all(tokens).unwrap()
}

#[test]
fn quantize_at_load_equals_the_saved_gguf() {
    let Some(dir) = common::stories("quantize_at_load_equals_the_saved_gguf") else { return };
    let out = std::env::temp_dir().join(format!("eurollm-rs-{}-q8.gguf", std::process::id()));
    let model = Model::load(&dir).unwrap();
    let tokens = model.tokenize("Once upon a time, there was a cat").unwrap();
    model.save_gguf(&out, WeightType::Q8_0).unwrap();
    let file = Model::load(&out).unwrap();
    let mem = Model::load_with(&dir, &ModelParams::default().weight_type(WeightType::Q8_0)).unwrap();
    let p = ContextParams::default();
    assert_eq!(logits(&file, &p, &tokens), logits(&mem, &p, &tokens));
    assert_ne!(logits(&model, &p, &tokens), logits(&mem, &p, &tokens));
    let _ = std::fs::remove_file(&out);
    let err = model.save_gguf(dir.join("no/such/dir/x.gguf"), WeightType::Q4_0).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err}");
}

#[test]
fn bf16_precision_stays_close_to_exact() {
    let Some(dir) = common::stories("bf16_precision_stays_close_to_exact") else { return };
    assert_eq!(ContextParams::default().precision, Precision::Exact);
    assert_eq!(ModelParams::default().weight_type, WeightType::Auto);
    let model = Model::load_with(&dir, &ModelParams::default().weight_type(WeightType::Bf16)).unwrap();
    let tokens = model.tokenize("Once upon a time, there was a cat").unwrap();
    let exact = logits(&model, &ContextParams::default(), &tokens);
    let bf16 = logits(&model, &ContextParams::default().precision(Precision::Bf16), &tokens);
    let scale = exact.iter().fold(0f32, |m, x| m.max(x.abs()));
    let worst = exact.iter().zip(&bf16).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst / scale < 1e-2, "{}", worst / scale);
}

#[test]
fn f16_kv_cache_stays_close_to_f32() {
    let Some(dir) = common::stories("f16_kv_cache_stays_close_to_f32") else { return };
    assert_eq!(ContextParams::default().kv_type, WeightType::F32);
    let model = Model::load(&dir).unwrap();
    let tokens = model.tokenize("Once upon a time, there was a cat").unwrap();
    let f32 = logits(&model, &ContextParams::default(), &tokens);
    let f16 = logits(&model, &ContextParams::default().kv_type(WeightType::F16), &tokens);
    let scale = f32.iter().fold(0f32, |m, x| m.max(x.abs()));
    let worst = f32.iter().zip(&f16).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst > 0.0 && worst / scale < 1e-2, "{}", worst / scale);
    let err = Context::new(&model, &ContextParams::default().kv_type(WeightType::Q8_0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{err}");
}
