//! Model properties and tokenization against independent references: config.json read as text, and
//! the C library's CLI (`eurollm tokenize`, `eurollm info`).

mod common;

use eurollm::{Model, ModelInfo, TokenizeFlags};

#[test]
fn properties_match_config_json_and_the_cli() {
    let test = "properties_match_config_json_and_the_cli";
    let Some(dir) = common::stories(test) else { return };
    let model = Model::load(&dir).unwrap();
    let cfg = |k: &str| common::config_value(&dir, k).unwrap().parse::<i64>().unwrap();
    assert_eq!(model.n_vocab() as i64, cfg("vocab_size"));
    assert_eq!(model.n_embd() as i64, cfg("hidden_size"));
    assert_eq!(model.info(ModelInfo::NLayer).unwrap(), cfg("num_hidden_layers"));
    assert_eq!(model.info(ModelInfo::NHead).unwrap(), cfg("num_attention_heads"));
    assert_eq!(model.info(ModelInfo::NHeadKv).unwrap(), cfg("num_key_value_heads"));
    assert_eq!(model.info(ModelInfo::NFf).unwrap(), cfg("intermediate_size"));
    assert_eq!(model.n_ctx_train() as i64, cfg("max_position_embeddings"));
    assert_eq!(model.bos_token().map(i64::from), Some(cfg("bos_token_id")));
    assert!(model.eos_tokens().unwrap().contains(&(cfg("eos_token_id") as i32)));
    assert_eq!(model.info(ModelInfo::EosId).unwrap(), model.eos_tokens().unwrap()[0] as i64);
    assert_eq!(model.architecture(), "llama");
    assert!(model.info(ModelInfo::NParams).unwrap() > 200_000);

    let Some(cli) = common::cli(test) else { return };
    let info = common::run_cli(&cli, &["info", &dir.to_string_lossy()]);
    let row = |name: &str| -> String {
        let line = info.lines().find(|l| l.split_whitespace().next() == Some(name)).unwrap();
        line.split_whitespace().nth(1).unwrap().to_string()
    };
    assert_eq!(row("parameters"), model.info(ModelInfo::NParams).unwrap().to_string());
    assert_eq!(row("tied_embeddings"), model.info(ModelInfo::TiedEmbeddings).unwrap().to_string());
    assert_eq!(row("sliding_window"), model.info(ModelInfo::SlidingWindow).unwrap().to_string());
    assert_eq!(row("head_dim"), model.info(ModelInfo::HeadDim).unwrap().to_string());
    assert_eq!(row("chat_template") == "yes", model.chat_template().is_some());
}

#[test]
fn tokenize_matches_the_cli_and_round_trips() {
    let test = "tokenize_matches_the_cli_and_round_trips";
    let Some(dir) = common::stories(test) else { return };
    let model = Model::load(&dir).unwrap();
    let texts = ["Once upon a time", "Lily and Tom went to the park.\nThe sun was hot!", "ünïcödé 🙂 bytes", ""];
    for t in texts {
        let ids = model.tokenize(t).unwrap();
        assert_eq!(model.detokenize(&ids).unwrap(), t);
        let plain = model.tokenize_with(t, TokenizeFlags::NONE).unwrap();
        let bos = model.tokenize_with(t, TokenizeFlags::ADD_BOS).unwrap();
        assert_eq!(bos[0], model.bos_token().unwrap());
        assert_eq!(bos[1..], plain[..]);
        // Long inputs need the buffer round trip.
        let long = t.repeat(200);
        let ids_long = model.tokenize(&long).unwrap();
        assert_eq!(model.detokenize(&ids_long).unwrap(), long);
    }
    let Some(cli) = common::cli(test) else { return };
    for t in texts.iter().filter(|t| !t.is_empty()) {
        let out = common::run_cli(&cli, &["tokenize", &dir.to_string_lossy(), t]);
        let expected: Vec<i32> = out.split_whitespace().map(|s| s.parse().unwrap()).collect();
        assert_eq!(model.tokenize(t).unwrap(), expected, "{t:?}");
    }
}

#[test]
fn pieces_and_bytes() {
    let Some(dir) = common::stories("pieces_and_bytes") else { return };
    let model = Model::load(&dir).unwrap();
    let ids = model.tokenize_with("Once", TokenizeFlags::NONE).unwrap();
    let pieces: String = ids.iter().map(|&i| model.token_to_piece(i).unwrap()).collect();
    assert_eq!(pieces.replace('\u{2581}', " ").trim_start(), "Once");
    // A multi-byte character split over byte tokens: exact bytes, or U+FFFD for a partial one.
    let ids = model.tokenize_with("🙂", TokenizeFlags::NONE).unwrap();
    let all = model.detokenize_bytes(&ids).unwrap();
    assert_eq!(all, "🙂".as_bytes());
    if ids.len() > 1 {
        let part = model.detokenize(&ids[..ids.len() - 1]).unwrap();
        assert!(part.contains('\u{FFFD}'), "{part:?}");
    }
}
