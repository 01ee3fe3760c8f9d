//! Several sequences per context, batched generation and context state, against runs of the same
//! work done separately (and the C CLI's multi-prompt generate).

mod common;

use eurollm::{Context, ContextParams, ErrorKind, Generator, GeneratorParams, Model};

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-5 * (1.0 + y.abs()))
}

fn alone(model: &Model, tokens: &[i32]) -> Vec<f32> {
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    ctx.decode(tokens).unwrap().to_vec()
}

#[test]
fn decode_seqs_and_prefix_sharing_equal_separate_runs() {
    let Some(dir) = common::stories("decode_seqs_and_prefix_sharing_equal_separate_runs") else { return };
    let model = Model::load(dir).unwrap();
    let a = model.tokenize("Once upon a time").unwrap();
    let b = model.tokenize("The little dog was happy").unwrap();
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    ctx.decode_seqs(&[(0, &a[..]), (3, &b[..])]).unwrap();
    assert_eq!((ctx.seq_n_past(0).unwrap(), ctx.seq_n_past(3).unwrap()), (a.len(), b.len()));
    assert!(close(ctx.seq_logits(0).unwrap(), &alone(&model, &a)));
    assert!(close(ctx.seq_logits(3).unwrap(), &alone(&model, &b)));
    assert_eq!(ctx.n_past(), a.len(), "single-sequence calls act on sequence 0");

    // Sequence 5 shares sequence 0's prompt and continues it.
    let more = model.tokenize_with(" there was", eurollm::TokenizeFlags::NONE).unwrap();
    ctx.seq_copy(0, 5, None).unwrap();
    ctx.decode_seqs(&[(5, &more[..])]).unwrap();
    let whole: Vec<i32> = a.iter().chain(&more).copied().collect();
    assert_eq!(ctx.seq_n_past(5).unwrap(), whole.len());
    assert!(close(ctx.seq_logits(5).unwrap(), &alone(&model, &whole)));

    // A partial copy, then removal and keep.
    ctx.seq_copy(0, 6, Some(2)).unwrap();
    assert_eq!(ctx.seq_n_past(6).unwrap(), 2);
    ctx.seq_remove(5, 0).unwrap();
    assert_eq!(ctx.seq_n_past(5).unwrap(), 0);
    ctx.seq_keep(3).unwrap();
    assert_eq!((ctx.seq_n_past(0).unwrap(), ctx.seq_n_past(3).unwrap()), (0, b.len()));

    // Bad ids are errors, nothing evaluated.
    let max = eurollm::MAX_SEQUENCES as i32;
    assert_eq!(ctx.decode_seqs(&[(max, &a[..])]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(ctx.decode_seqs(&[(1, &a[..]), (1, &b[..])]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(ctx.decode_seqs(&[(1, &[1, 100_000][..])]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(ctx.seq_n_past(1).unwrap(), 0);
    assert!(ctx.seq_logits(1).is_err());
    assert!(ctx.seq_n_past(-1).is_err());
}

fn single(model: &Model, prompt: &str, params: &GeneratorParams) -> String {
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let text: eurollm::Result<String> = ctx.generate(prompt, params).unwrap().text().collect();
    text.unwrap()
}

#[test]
fn batched_generation_equals_separate_generation_and_the_cli() {
    let test = "batched_generation_equals_separate_generation_and_the_cli";
    let Some(dir) = common::stories(test) else { return };
    let model = Model::load(&dir).unwrap();
    let prompts = ["Once upon a time", "The dog", "Lily", ""];
    let base = GeneratorParams::default().temperature(0.8).seed(11).max_tokens(40);
    let params: Vec<GeneratorParams> = (0..prompts.len()).map(|i| base.clone().seq_id(i as i32)).collect();

    let mut ctx = Context::new(&model, &ContextParams::default()).unwrap();
    let mut gens = ctx.generators(&params).unwrap();
    for (g, p) in gens.iter_mut().zip(prompts) {
        let mut ids = model.tokenize(p).unwrap();
        if ids.is_empty() {
            ids.push(model.bos_token().unwrap());
        }
        g.append_tokens(&ids).unwrap();
    }
    let mut texts = vec![String::new(); prompts.len()];
    let mut steps = 0;
    loop {
        let out = Generator::step_batch(&mut gens).unwrap();
        for (t, g) in texts.iter_mut().zip(&gens) {
            t.push_str(g.text_delta().unwrap());
        }
        if out.iter().all(Option::is_none) {
            break;
        }
        steps += 1;
        assert!(steps <= 41);
    }
    for (i, p) in prompts.iter().enumerate() {
        assert_eq!(texts[i], single(&model, p, &base), "prompt {p:?} batched vs alone");
        assert!(gens[i].stop_reason().is_some());
    }
    drop(gens);

    // Two generators on one sequence are refused.
    let same = vec![base.clone(), base.clone()];
    assert_eq!(ctx.generators(&same).unwrap_err().kind(), ErrorKind::InvalidArgument);

    let Some(cli) = common::cli(test) else { return };
    let d = dir.to_string_lossy();
    let mut args = vec!["generate", &*d, "--temp", "0.8", "--seed", "11", "-n", "40"];
    for p in &prompts {
        args.push("-p");
        args.push(p);
    }
    let expected: String = texts.iter().enumerate().map(|(i, t)| format!("### {}\n{t}\n", i + 1)).collect();
    assert_eq!(common::run_cli(&cli, &args), expected);
}

#[test]
fn state_round_trips_through_bytes_and_files() {
    let Some(dir) = common::stories("state_round_trips_through_bytes_and_files") else { return };
    let model = Model::load(dir).unwrap();
    let a = model.tokenize("Once upon a time").unwrap();
    let b = model.tokenize("The cat").unwrap();
    let next = [model.tokenize_with(" there", eurollm::TokenizeFlags::NONE).unwrap()[0]];

    let mut ctx = model.context(&ContextParams::default()).unwrap();
    ctx.decode_seqs(&[(0, &a[..]), (2, &b[..])]).unwrap();
    let state = ctx.save_state().unwrap();
    assert!(!state.is_empty());
    let expected = ctx.decode(&next).unwrap().to_vec();

    // Into a fresh context: the same caches, so the same next logits.
    let mut other = model.context(&ContextParams::default()).unwrap();
    other.load_state(&state).unwrap();
    assert_eq!((other.seq_n_past(0).unwrap(), other.seq_n_past(2).unwrap()), (a.len(), b.len()));
    assert!(close(other.decode(&next).unwrap(), &expected));

    // Through a file.
    let path = std::env::temp_dir().join(format!("eurollm-rs-state-{}.bin", std::process::id()));
    ctx.reset().unwrap();
    ctx.decode_seqs(&[(0, &a[..]), (2, &b[..])]).unwrap();
    ctx.save_state_file(&path).unwrap();
    let mut third = model.context(&ContextParams::default()).unwrap();
    third.load_state_file(&path).unwrap();
    assert!(close(third.decode(&next).unwrap(), &expected));
    let _ = std::fs::remove_file(&path);

    // Damaged bytes and missing files are errors that leave the context as it was.
    let mut fresh = model.context(&ContextParams::default()).unwrap();
    fresh.decode(&a).unwrap();
    assert_eq!(fresh.load_state(&state[..state.len() / 2]).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(fresh.load_state(b"not a state").unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(fresh.n_past(), a.len());
    assert_eq!(fresh.load_state_file("/no/such/state.bin").unwrap_err().kind(), ErrorKind::Io);
    assert_eq!(fresh.n_past(), a.len());
}
