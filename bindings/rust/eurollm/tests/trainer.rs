//! Training through the experimental API (feature `experimental`; run_tests.sh enables it when the
//! library exports the trainer). References: the base model's logits through a Context, a
//! cross-entropy computed here from the trainer's logits, and round trips through the library's
//! files (PEFT adapter, merged model, checkpoint).
#![cfg(feature = "experimental")]

mod common;

use eurollm::trainer::{
    adapter_merge, Dataset, LoraTargets, TensorPart, TrainMode, Trainer, TrainerParams, IGNORE_LABEL,
};
use eurollm::{ContextParams, ErrorKind, Model, ModelParams, Precision};

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("eurollm-rs-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn batch(model: &Model) -> (Vec<i32>, Vec<i32>, usize) {
    let a = model.tokenize("Once upon a time, there was a cat named Tom.").unwrap();
    let b = model.tokenize("Lily liked to play with her red ball.").unwrap();
    let len = a.len().min(b.len());
    let tokens: Vec<i32> = a[..len].iter().chain(&b[..len]).copied().collect();
    let mut labels = tokens.clone();
    labels[..3].fill(IGNORE_LABEL); // the start of the first sequence is a "prompt"
    (tokens, labels, len)
}

/// Mean cross-entropy of labels[t + 1] under logits[t], over labelled positions: computed here.
fn cross_entropy(logits: &[f32], labels: &[i32], n_vocab: usize) -> (f32, i64) {
    let (mut sum, mut n) = (0f64, 0i64);
    for t in 0..labels.len() - 1 {
        let y = labels[t + 1];
        if y == IGNORE_LABEL {
            continue;
        }
        let row = &logits[t * n_vocab..(t + 1) * n_vocab];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max + row.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
        sum += lse - row[y as usize] as f64;
        n += 1;
    }
    ((sum / n as f64) as f32, n)
}

fn lora() -> TrainerParams {
    TrainerParams::default().mode(TrainMode::Lora).lora_rank(4).lora_alpha(8.0).lr(1e-2).seed(3).n_threads(1)
}

#[test]
fn a_fresh_lora_trainer_is_the_base_model_and_its_loss_is_the_cross_entropy() {
    let Some(dir) = common::stories("a_fresh_lora_trainer_is_the_base_model_and_its_loss_is_the_cross_entropy") else {
        return;
    };
    let model = Model::load(dir).unwrap();
    let (tokens, labels, len) = batch(&model);
    let seq = &tokens[..len];
    let mut trainer = Trainer::new(&model, &lora()).unwrap();
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let base = ctx.decode_all(seq).unwrap();
    let t = trainer.logits(seq).unwrap();
    assert_eq!(t.len(), base.len());
    let max_err = t.iter().zip(&base).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(max_err < 1e-4, "LoRA B starts at zero, so the logits are the base model's: {max_err}");

    let (loss, n) = trainer.eval(seq, &labels[..len], len).unwrap();
    let (want, want_n) = cross_entropy(&t, &labels[..len], model.n_vocab());
    assert_eq!(n, want_n);
    assert!((loss - want).abs() < 1e-4 * want.max(1.0), "{loss} vs {want}");
}

#[test]
fn bf16_precision_tracks_exact() {
    let Some(dir) = common::stories("bf16_precision_tracks_exact") else { return };
    assert_eq!(TrainerParams::default().precision, Precision::Exact);
    let model = Model::load(dir).unwrap();
    let (tokens, labels, len) = batch(&model);
    let mut exact = Trainer::new(&model, &lora()).unwrap();
    let mut bf16 = Trainer::new(&model, &lora().precision(Precision::Bf16)).unwrap();
    let mut differ = false;
    for step in 1..=4 {
        let a = exact.step(&tokens, &labels, len).unwrap();
        let b = bf16.step(&tokens, &labels, len).unwrap();
        // bf16 products: the same run to within their rounding, not bit for bit.
        assert!((a.loss - b.loss).abs() < 2e-2 * a.loss, "step {step}: {} vs {}", a.loss, b.loss);
        differ |= a.loss != b.loss;
    }
    assert!(differ, "BF16 gave EXACT's losses bit for bit: the precision did not reach the trainer");
}

#[test]
fn lora_steps_lower_the_loss_and_round_trip_through_peft_and_merged_models() {
    let test = "lora_steps_lower_the_loss_and_round_trip_through_peft_and_merged_models";
    let Some(dir) = common::stories(test) else { return };
    let model = Model::load(&dir).unwrap();
    let (tokens, labels, len) = batch(&model);
    let mut trainer = Trainer::new(&model, &lora()).unwrap();
    let first = trainer.step(&tokens, &labels, len).unwrap();
    assert_eq!(first.step, 1);
    assert_eq!(first.tokens, tokens.len() as i64);
    let expected_labelled = (0..2)
        .map(|s| labels[s * len + 1..(s + 1) * len].iter().filter(|&&l| l != IGNORE_LABEL).count())
        .sum::<usize>();
    assert_eq!(first.loss_tokens, expected_labelled as i64);
    for _ in 0..9 {
        trainer.step(&tokens, &labels, len).unwrap();
    }
    assert_eq!(trainer.step_count(), 10);
    let (after, _) = trainer.eval(&tokens, &labels, len).unwrap();
    assert!(after < first.loss * 0.9, "loss {} -> {after}", first.loss);

    let names = trainer.tensor_names().unwrap();
    assert!(!names.is_empty() && names.iter().all(|n| n.contains("lora_")), "{names:?}");
    let (n, elems) = trainer.n_tensors().unwrap();
    assert_eq!(n, names.len());
    let total: usize = names.iter().map(|n| trainer.tensor(n, TensorPart::Value).unwrap().len()).sum();
    assert_eq!(total as i64, elems);
    assert_eq!(trainer.tensor("no.such.tensor", TensorPart::Value).unwrap_err().kind(), ErrorKind::InvalidArgument);

    let seq = &tokens[..len];
    let trained = trainer.logits(seq).unwrap();
    let close = |other: &[f32]| other.iter().zip(&trained).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max) < 1e-3;

    let adapter = temp_dir("adapter");
    trainer.export_peft(&adapter).unwrap();
    assert!(adapter.join("adapter_config.json").exists());
    let with = Model::load_with_adapter(&dir, &adapter, 1.0, &ModelParams::default()).unwrap();
    assert!(close(&with.context(&ContextParams::default()).unwrap().decode_all(seq).unwrap()));
    let zero = Model::load_with_adapter(&dir, &adapter, 0.0, &ModelParams::default()).unwrap();
    let base = model.context(&ContextParams::default()).unwrap().decode_all(seq).unwrap();
    assert_eq!(zero.context(&ContextParams::default()).unwrap().decode_all(seq).unwrap(), base);

    let merged = temp_dir("merged");
    trainer.save_model(&merged).unwrap();
    let m = Model::load(&merged).unwrap();
    assert!(close(&m.context(&ContextParams::default()).unwrap().decode_all(seq).unwrap()));
    let merged2 = temp_dir("merged2");
    adapter_merge(&dir, &adapter, 1.0, &merged2).unwrap();
    let m2 = Model::load(&merged2).unwrap();
    assert!(close(&m2.context(&ContextParams::default()).unwrap().decode_all(seq).unwrap()));

    let mut again = Trainer::new(&model, &lora()).unwrap();
    again.load_peft(&adapter).unwrap();
    let (l2, _) = again.eval(&tokens, &labels, len).unwrap();
    assert!((l2 - after).abs() < 1e-4, "{l2} vs {after}");
    let wrong_rank = lora().lora_rank(2);
    assert!(Trainer::new(&model, &wrong_rank).unwrap().load_peft(&adapter).is_err());
    for d in [adapter, merged, merged2] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn checkpoints_resume_exactly() {
    let Some(dir) = common::stories("checkpoints_resume_exactly") else { return };
    let model = Model::load(dir).unwrap();
    let (tokens, labels, len) = batch(&model);
    let params =
        lora().lora_targets(LoraTargets::Q | LoraTargets::V | LoraTargets::DOWN).total_steps(20).warmup_steps(2);
    let run = temp_dir("ckpt");
    let mut a = Trainer::new(&model, &params).unwrap();
    for _ in 0..3 {
        a.step(&tokens, &labels, len).unwrap();
    }
    a.set_data_position(1, 42, 7).unwrap();
    a.save_checkpoint(&run).unwrap();
    let next_a = a.step(&tokens, &labels, len).unwrap();

    let mut b = Trainer::new(&model, &params).unwrap();
    b.load_checkpoint(&run).unwrap();
    assert_eq!(b.step_count(), 3);
    assert_eq!(b.data_position().unwrap(), (1, 42, 7));
    let next_b = b.step(&tokens, &labels, len).unwrap();
    assert_eq!(next_a, next_b, "a resumed trainer takes the same step");

    // The recorded hyper-parameters come back from the checkpoint.
    let recorded = TrainerParams::from_checkpoint(&run).unwrap();
    assert_eq!(recorded.mode, TrainMode::Lora);
    assert_eq!((recorded.lora_rank, recorded.lora_targets), (params.lora_rank, params.lora_targets));
    assert_eq!((recorded.lr, recorded.total_steps, recorded.warmup_steps), (params.lr, 20, 2));
    assert_eq!(TrainerParams::from_checkpoint(temp_dir("none2")).unwrap_err().kind(), ErrorKind::Io);

    let mut empty = Trainer::new(&model, &params).unwrap();
    assert_eq!(empty.load_checkpoint(temp_dir("none")).unwrap_err().kind(), ErrorKind::Io);
    let _ = std::fs::remove_dir_all(&run);
}

#[test]
fn progress_callback_bad_batches_and_full_fine_tuning() {
    let Some(dir) = common::stories("progress_callback_bad_batches_and_full_fine_tuning") else { return };
    let model = Model::load(dir).unwrap();
    let (tokens, labels, len) = batch(&model);
    let mut t = Trainer::new(&model, &lora()).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    t.set_progress_callback(move |r| {
        sink.lock().unwrap().push(r.step);
        r.step < 2
    })
    .unwrap();
    assert!(!t.step(&tokens, &labels, len).unwrap().stop_requested);
    let r = t.step(&tokens, &labels, len).unwrap();
    assert!(r.stop_requested);
    assert_eq!(t.step_count(), 2, "the step stands");
    assert_eq!(*seen.lock().unwrap(), vec![1, 2]);
    t.clear_progress_callback().unwrap();

    assert_eq!(t.step(&tokens, &labels[1..], len).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(t.step(&tokens, &labels, len + 1).unwrap_err().kind(), ErrorKind::InvalidArgument);
    let all_ignored = vec![IGNORE_LABEL; tokens.len()];
    assert_eq!(t.step(&tokens, &all_ignored, len).unwrap_err().kind(), ErrorKind::InvalidArgument);
    let mut bad = tokens.clone();
    bad[1] = 1_000_000;
    assert_eq!(t.step(&bad, &labels, len).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(t.step_count(), 2, "failed steps change nothing");

    let mut full = Trainer::new(&model, &TrainerParams::default().mode(TrainMode::Full).lr(1e-3).n_threads(1)).unwrap();
    let before = full.compute_gradients(&tokens, &labels, len).unwrap();
    let name = full.tensor_names().unwrap().into_iter().find(|n| n.contains("q_proj")).unwrap();
    let grad = full.tensor(&name, TensorPart::Grad).unwrap();
    assert!(grad.iter().any(|&g| g != 0.0));
    for _ in 0..5 {
        full.step(&tokens, &labels, len).unwrap();
    }
    assert!(full.eval(&tokens, &labels, len).unwrap().0 < before);
    // The model itself is never written: a context still sees the base weights.
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let base = ctx.decode_all(&tokens[..len]).unwrap();
    assert!(full.logits(&tokens[..len]).unwrap() != base);
}

#[test]
fn datasets_pack_text_as_the_tokenizer_does() {
    let Some(dir) = common::stories("datasets_pack_text_as_the_tokenizer_does") else { return };
    let model = Model::load(dir).unwrap();
    let docs = ["Once upon a time, there was a cat named Tom.", "Lily had a red ball.", "The sun was hot."];
    let d = temp_dir("data");
    let path = d.join("train.jsonl");
    let lines: String = docs.iter().map(|t| format!("{{\"text\": \"{t}\"}}\n")).collect();
    std::fs::write(&path, lines).unwrap();

    // BOS + text + EOS per document, concatenated, cut into sequences of 8.
    let (bos, eos) = (model.bos_token().unwrap(), model.eos_tokens().unwrap()[0]);
    let mut stream = Vec::new();
    for t in docs {
        stream.push(bos);
        stream.extend(model.tokenize_with(t, eurollm::TokenizeFlags::NONE).unwrap());
        stream.push(eos);
    }
    let mut data = Dataset::load(&model, &path, 8).unwrap();
    assert_eq!(data.n_sequences(), stream.len() / 8);
    let n = data.n_sequences();
    let (tokens, labels) = data.get(0, n, None).unwrap();
    assert_eq!(tokens, stream[..n * 8]);
    // Every token of the text is a target; BOS, which no document predicts, is not.
    let expected: Vec<i32> = tokens.iter().map(|&t| if t == bos { IGNORE_LABEL } else { t }).collect();
    assert_eq!(labels, expected);

    // An epoch's shuffle is a permutation of the sequences, the same for the same seed and epoch.
    let (s1, _) = data.get(0, n, Some((9, 1))).unwrap();
    assert_eq!(s1, data.get(0, n, Some((9, 1))).unwrap().0);
    let mut a: Vec<&[i32]> = s1.chunks(8).collect();
    let mut b: Vec<&[i32]> = tokens.chunks(8).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);

    let held = data.split(1).unwrap();
    assert_eq!((data.n_sequences(), held.n_sequences()), (n - 1, 1));
    assert_eq!(held.get(0, 1, None).unwrap().0, tokens[(n - 1) * 8..]);
    assert_eq!(data.get(0, n, None).unwrap_err().kind(), ErrorKind::InvalidArgument);

    assert_eq!(Dataset::load(&model, d.join("missing.jsonl"), 8).unwrap_err().kind(), ErrorKind::Io);
    assert_eq!(Dataset::load(&model, &path, 1).unwrap_err().kind(), ErrorKind::InvalidArgument);
    std::fs::write(d.join("bad.jsonl"), "{not json\n").unwrap();
    assert!(Dataset::load(&model, d.join("bad.jsonl"), 8).is_err());
    let _ = std::fs::remove_dir_all(&d);
}
