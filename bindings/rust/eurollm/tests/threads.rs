//! One Model shared by threads (Send + Sync), contexts moved between threads (Send): the same
//! output as on one thread.

mod common;

use std::sync::Arc;

use eurollm::{Context, ContextParams, GeneratorParams, Model};

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>() {}

#[test]
fn model_is_send_and_sync_and_context_is_send() {
    assert_send_sync::<Model>();
    assert_send::<Context<'static>>();
    assert_send_sync::<eurollm::Error>();
}

fn story(model: &Model, seed: u64) -> String {
    let mut ctx = Context::new(model, &ContextParams::default().n_threads(1)).unwrap();
    let params = GeneratorParams::default().seed(seed).max_tokens(48);
    let text: eurollm::Result<String> = ctx.generate("Once upon a time", &params).unwrap().text().collect();
    text.unwrap()
}

#[test]
fn one_model_serves_contexts_on_many_threads() {
    let Some(dir) = common::stories("one_model_serves_contexts_on_many_threads") else { return };
    let model = Arc::new(Model::load(dir).unwrap());
    let expected: Vec<String> = (1..=4).map(|seed| story(&model, seed)).collect();
    let handles: Vec<_> = (1..=4u64)
        .map(|seed| {
            let m = Arc::clone(&model);
            std::thread::spawn(move || story(&m, seed))
        })
        .collect();
    let got: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_context_moves_to_another_thread_with_its_borrow() {
    let Some(dir) = common::stories("a_context_moves_to_another_thread_with_its_borrow") else { return };
    let model = Model::load(dir).unwrap();
    let mut ctx = Context::new(&model, &ContextParams::default()).unwrap();
    let prompt = model.tokenize("Once upon a time").unwrap();
    let here = ctx.decode(&prompt).unwrap().to_vec();
    ctx.reset().unwrap();
    let there = std::thread::scope(|s| {
        s.spawn(move || {
            let l = ctx.decode(&prompt).unwrap().to_vec();
            drop(ctx);
            l
        })
        .join()
        .unwrap()
    });
    assert_eq!(here, there);
}
