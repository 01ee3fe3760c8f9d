//! Streaming details: callbacks, stop strings and tokens, logits, panics inside callbacks, cache
//! continuation. References are the C API (raw calls, the CLI) or properties that hold between
//! independent calls (a stopped text is a prefix of the unstopped one).

mod common;

use std::cell::RefCell;
use std::rc::Rc;

use eurollm::{Context, ContextParams, GeneratorParams, Model, Piece, StopReason, TokenizeFlags};

fn load(test: &str) -> Option<Model> {
    common::stories(test).map(|d| Model::load(d).unwrap())
}

fn greedy(n: i32) -> GeneratorParams {
    GeneratorParams::greedy().max_tokens(n)
}

fn run(model: &Model, prompt: &str, params: &GeneratorParams) -> (Vec<i32>, String) {
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let pieces: Vec<Piece> = ctx.generate(prompt, params).unwrap().map(Result::unwrap).collect();
    (pieces.iter().filter_map(|p| p.token).collect(), pieces.iter().map(|p| p.text.as_str()).collect())
}

#[test]
fn callback_sees_what_the_iterator_yields_and_can_stop() {
    let Some(model) = load("callback_sees_what_the_iterator_yields_and_can_stop") else { return };
    let (tokens, text) = run(&model, "Once upon a time", &greedy(40));

    let seen = Rc::new(RefCell::new((Vec::new(), String::new())));
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let mut gen = ctx.generate("Once upon a time", &greedy(40)).unwrap();
    let sink = seen.clone();
    gen.set_callback(move |tok, piece| {
        let mut s = sink.borrow_mut();
        s.0.extend(tok);
        s.1.push_str(piece);
        true
    })
    .unwrap();
    let streamed: String = gen.text().collect::<eurollm::Result<_>>().unwrap();
    assert_eq!(streamed, text);
    assert_eq!(seen.borrow().0, tokens);
    assert_eq!(seen.borrow().1, text);
    drop(gen);

    // Returning false stops after that token.
    ctx.reset().unwrap();
    let mut gen = ctx.generate("Once upon a time", &greedy(40)).unwrap();
    let mut count = 0;
    gen.set_callback(move |_, _| {
        count += 1;
        count < 5
    })
    .unwrap();
    let got: Vec<i32> = gen.tokens().collect::<eurollm::Result<_>>().unwrap();
    assert_eq!(got, tokens[..5]);
    assert_eq!(gen.stop_reason(), Some(StopReason::Callback));
    assert_eq!(gen.n_generated(), 5);
}

#[test]
fn stop_strings_and_tokens_cut_the_unstopped_output() {
    let Some(model) = load("stop_strings_and_tokens_cut_the_unstopped_output") else { return };
    let (tokens, text) = run(&model, "", &greedy(60));
    let cut = text.find(" was").expect("the greedy story has ' was'");

    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let mut gen = ctx.generate("", &greedy(60)).unwrap();
    gen.add_stop_string(" was").unwrap();
    let stopped: String = gen.text().collect::<eurollm::Result<_>>().unwrap();
    assert_eq!(stopped, text[..cut]);
    assert_eq!(gen.stop_reason(), Some(StopReason::StopString));
    drop(gen);

    // A stop token: generation ends before it, the tokens before it unchanged.
    let stop_tok = tokens[7];
    let first = tokens.iter().position(|&t| t == stop_tok).unwrap();
    ctx.reset().unwrap();
    let mut gen = ctx.generate("", &greedy(60)).unwrap();
    gen.add_stop_token(stop_tok).unwrap();
    let got: Vec<i32> = gen.tokens().collect::<eurollm::Result<_>>().unwrap();
    assert_eq!(got, tokens[..first]);
    assert_eq!(gen.stop_reason(), Some(StopReason::Eos));
}

#[test]
fn stop_string_matches_the_c_cli() {
    let test = "stop_string_matches_the_c_cli";
    let (Some(dir), Some(cli)) = (common::stories(test), common::cli(test)) else { return };
    let model = Model::load(&dir).unwrap();
    let d = dir.to_string_lossy();
    let expected = common::run_cli(&cli, &["generate", &d, "-p", "Lily", "--temp", "0", "-n", "80", "--stop", "."]);
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let mut gen = ctx.generate("Lily", &greedy(80)).unwrap();
    gen.add_stop_string(".").unwrap();
    let text: String = gen.text().collect::<eurollm::Result<_>>().unwrap();
    assert_eq!(format!("{text}\n"), expected);
}

#[test]
fn streamed_text_equals_detokenized_tokens() {
    let Some(model) = load("streamed_text_equals_detokenized_tokens") else { return };
    let (tokens, text) = run(&model, "", &greedy(60));
    assert_eq!(model.detokenize(&tokens).unwrap(), text);
}

#[test]
fn logits_agree_between_generator_decode_and_decode_all() {
    let Some(model) = load("logits_agree_between_generator_decode_and_decode_all") else { return };
    let prompt = model.tokenize("Once upon a time there was").unwrap();
    let n_vocab = model.n_vocab();

    let mut c1 = model.context(&ContextParams::default()).unwrap();
    let last = c1.decode(&prompt).unwrap().to_vec();
    assert_eq!(last.len(), n_vocab);

    let mut c2 = model.context(&ContextParams::default()).unwrap();
    let all = c2.decode_all(&prompt).unwrap();
    assert_eq!(all.len(), prompt.len() * n_vocab);
    let last_row = &all[(prompt.len() - 1) * n_vocab..];
    for (a, b) in last.iter().zip(last_row) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
    }

    // Token by token gives each row of decode_all.
    let mut c3 = model.context(&ContextParams::default()).unwrap();
    for (i, &t) in prompt.iter().enumerate() {
        let row = c3.decode(&[t]).unwrap();
        let want = &all[i * n_vocab..(i + 1) * n_vocab];
        let max_err = row.iter().zip(want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(max_err < 1e-3, "row {i}: max error {max_err}");
    }

    let mut c4 = model.context(&ContextParams::default()).unwrap();
    let mut gen = c4.generator(&greedy(1)).unwrap();
    gen.append_tokens(&prompt).unwrap();
    let g = gen.logits().unwrap().to_vec();
    assert_eq!(g, last);
    // Greedy picks the argmax of those logits.
    let argmax = (0..n_vocab).max_by(|&a, &b| g[a].total_cmp(&g[b])).unwrap() as i32;
    assert_eq!(gen.step().unwrap(), Some(argmax));
}

#[test]
fn a_panic_in_a_callback_reaches_the_caller() {
    let Some(model) = load("a_panic_in_a_callback_reaches_the_caller") else { return };
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    {
        let mut gen = ctx.generate("Once", &greedy(20)).unwrap();
        let mut n = 0;
        gen.set_callback(move |_, _| {
            n += 1;
            if n == 3 {
                panic!("callback panic #{n}");
            }
            true
        })
        .unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for p in gen.by_ref() {
                p.unwrap();
            }
        }));
        let payload = caught.expect_err("the panic was swallowed");
        assert_eq!(payload.downcast_ref::<String>().map(String::as_str), Some("callback panic #3"));
        // The generator stopped (the callback "returned false") and is still sound to use.
        assert!(gen.step().unwrap().is_none());
        assert_eq!(gen.stop_reason(), Some(StopReason::Callback));
    }
    ctx.reset().unwrap();
    ctx.set_abort_callback(|| panic!("abort panic")).unwrap();
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ctx.decode(&[1]).map(|_| ())));
    assert_eq!(caught.unwrap_err().downcast_ref::<&str>(), Some(&"abort panic"));
    ctx.clear_abort_callback().unwrap();
    ctx.reset().unwrap();
    assert!(ctx.decode(&[1]).is_ok());
}

#[test]
fn abort_callback_stops_generation_with_aborted() {
    let Some(model) = load("abort_callback_stops_generation_with_aborted") else { return };
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let polls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let p = polls.clone();
    // Allow some layers, then stop.
    ctx.set_abort_callback(move || p.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 10).unwrap();
    let mut gen = ctx.generate("Once", &greedy(50)).unwrap();
    let err = gen.tokens().find_map(Result::err).expect("the abort callback did not stop generation");
    assert_eq!(err.kind(), eurollm::ErrorKind::Aborted);
    assert!(polls.load(std::sync::atomic::Ordering::SeqCst) > 10);
}

#[test]
fn generators_continue_the_cache_until_reset() {
    let Some(model) = load("generators_continue_the_cache_until_reset") else { return };
    let mut ctx = Context::new(&model, &ContextParams::default()).unwrap();
    let prompt = model.tokenize("Once upon a time").unwrap();
    let first: Vec<i32> = {
        let mut gen = ctx.generator(&greedy(10).ignore_eos(true)).unwrap();
        gen.append_tokens(&prompt).unwrap();
        gen.tokens().collect::<eurollm::Result<_>>().unwrap()
    };
    // prompt + 10 sampled, of which the last was never evaluated.
    assert_eq!(ctx.n_past(), prompt.len() + 9);
    {
        let mut gen = ctx.generator(&greedy(5).ignore_eos(true)).unwrap();
        gen.append_text(" and", TokenizeFlags::NONE).unwrap();
        assert_eq!(gen.tokens().count(), 5);
    }
    assert!(ctx.n_past() > prompt.len() + 10);
    ctx.reset().unwrap();
    assert_eq!(ctx.n_past(), 0);
    let mut gen = ctx.generator(&greedy(10).ignore_eos(true)).unwrap();
    gen.append_tokens(&prompt).unwrap();
    let again: Vec<i32> = gen.tokens().collect::<eurollm::Result<_>>().unwrap();
    assert_eq!(first, again);
}

#[test]
fn held_back_text_is_released_at_the_end() {
    let Some(model) = load("held_back_text_is_released_at_the_end") else { return };
    let params = greedy(30).ignore_eos(true);
    let (tokens, text) = run(&model, "Once upon a time", &params);
    // A stop string that starts with the end of the text but never completes: that end is held
    // back until generation finishes, then released as a last piece without a token.
    let tail: String = text.chars().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
    let stop = format!("{tail}\u{1}never");
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let mut gen = ctx.generate("Once upon a time", &params).unwrap();
    gen.add_stop_string(&stop).unwrap();
    let pieces: Vec<Piece> = gen.by_ref().map(Result::unwrap).collect();
    let last = pieces.last().unwrap();
    assert_eq!(last.token, None, "no held-back piece at the end: {pieces:?}");
    assert!(last.text.ends_with(&tail));
    let got: String = pieces.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(got, text);
    assert_eq!(pieces.iter().filter_map(|p| p.token).collect::<Vec<_>>(), tokens);
    assert_eq!(gen.stop_reason(), Some(StopReason::MaxTokens));
}
