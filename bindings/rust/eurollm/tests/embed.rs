//! Embeddings against independent references: transformers' final hidden states (the repository's
//! golden file), the raw C call, the C CLI's `embed` command, and pooling identities computed here.

mod common;

use eurollm::{sys, ContextParams, EmbedParams, ErrorKind, Model, Pooling, TokenizeFlags};

fn close(a: &[f32], b: &[f32], tol: f32) -> Result<(), String> {
    if a.len() != b.len() {
        return Err(format!("lengths {} and {}", a.len(), b.len()));
    }
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        if (x - y).abs() > tol * (1.0 + y.abs()) {
            return Err(format!("component {i}: {x} vs {y}"));
        }
    }
    Ok(())
}

#[test]
fn mean_and_last_pooling_match_transformers() {
    let test = "mean_and_last_pooling_match_transformers";
    let (Some(dir), Some(golden)) = (common::stories(test), common::golden(test, "stories260K_embed.json")) else {
        return;
    };
    let model = Model::load(dir).unwrap();
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let items = golden.get("items").arr();
    let texts: Vec<&str> = items.iter().map(|it| it.get("text").str()).collect();
    for (pooling, key) in [(Pooling::Mean, "mean"), (Pooling::Last, "last")] {
        let e = ctx.embed(&texts, &EmbedParams::default().pooling(pooling)).unwrap();
        assert_eq!(e.shape(), (texts.len(), model.n_embd()));
        for (i, it) in items.iter().enumerate() {
            assert_eq!(model.tokenize(texts[i]).unwrap(), it.get("tokens").i32s(), "tokens of {:?}", texts[i]);
            close(e.row(i).unwrap(), &it.get(key).f32s(), 1e-4)
                .unwrap_or_else(|m| panic!("{key} of {:?}: {m}", texts[i]));
        }
    }
}

#[test]
fn embed_equals_the_raw_c_call_and_the_cli() {
    let test = "embed_equals_the_raw_c_call_and_the_cli";
    let Some(dir) = common::stories(test) else { return };
    let model = Model::load(&dir).unwrap();
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let texts = ["a cat", "the dog ran to the park", "Lily"];
    let params = EmbedParams::default().normalize(true).dim(16);
    let e = ctx.embed(&texts, &params).unwrap();
    assert_eq!(e.shape(), (3, 16));

    // The raw call, written out here.
    let ptrs: Vec<*const std::os::raw::c_char> = texts.iter().map(|t| t.as_ptr().cast()).collect();
    let lens: Vec<usize> = texts.iter().map(|t| t.len()).collect();
    let mut raw = sys::eurollm_embed_params::default();
    unsafe {
        assert_eq!(
            sys::eurollm_embed_params_init(&mut raw, sys::EUROLLM_EMBED_PARAMS_VERSION),
            sys::eurollm_status::EUROLLM_OK
        );
    }
    raw.normalize = true;
    raw.dim = 16;
    let mut out = vec![0f32; 3 * 16];
    let (mut rows, mut dim) = (0usize, 0usize);
    let st = unsafe {
        sys::eurollm_embed_texts(
            ctx.as_ptr(),
            ptrs.as_ptr(),
            lens.as_ptr(),
            3,
            &raw,
            out.as_mut_ptr(),
            out.len(),
            &mut rows,
            &mut dim,
        )
    };
    assert_eq!(st, sys::eurollm_status::EUROLLM_OK);
    assert_eq!((rows, dim), (3, 16));
    assert_eq!(e.as_slice(), &out[..]);

    let Some(cli) = common::cli(test) else { return };
    let mut child = std::process::Command::new(&cli)
        .args(["embed", &dir.to_string_lossy(), "--normalize", "--dim", "16"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(texts.join("\n").as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let lines: Vec<Vec<f32>> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| common::json::parse(l).unwrap().f32s()).collect();
    assert_eq!(lines.len(), 3);
    for (i, l) in lines.iter().enumerate() {
        close(e.row(i).unwrap(), l, 1e-6).unwrap_or_else(|m| panic!("row {i} vs CLI: {m}"));
    }
}

#[test]
fn pooling_normalisation_and_truncation_are_consistent() {
    let Some(dir) = common::stories("pooling_normalisation_and_truncation_are_consistent") else { return };
    let model = Model::load(dir).unwrap();
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let texts = ["Once upon a time, there was a little dog.", "Tom"];
    let n_tok: Vec<usize> = texts.iter().map(|t| model.tokenize(t).unwrap().len()).collect();
    let d = model.n_embd();

    let per_token = ctx.embed(&texts, &EmbedParams::default().pooling(Pooling::None)).unwrap();
    assert_eq!(per_token.shape(), (n_tok[0] + n_tok[1], d));
    let mean = ctx.embed(&texts, &EmbedParams::default()).unwrap();
    let first = ctx.embed(&texts, &EmbedParams::default().pooling(Pooling::First)).unwrap();
    let last = ctx.embed(&texts, &EmbedParams::default().pooling(Pooling::Last)).unwrap();
    let mut start = 0;
    for (i, &n) in n_tok.iter().enumerate() {
        let rows: Vec<&[f32]> = per_token.rows().skip(start).take(n).collect();
        let m: Vec<f32> = (0..d).map(|j| rows.iter().map(|r| r[j]).sum::<f32>() / n as f32).collect();
        close(mean.row(i).unwrap(), &m, 1e-5).unwrap();
        assert_eq!(first.row(i).unwrap(), rows[0]);
        assert_eq!(last.row(i).unwrap(), rows[n - 1]);
        start += n;
    }

    // Normalised rows have unit length and the direction of the raw ones; dim keeps a prefix.
    let norm = ctx.embed(&texts, &EmbedParams::default().normalize(true)).unwrap();
    for (r, n) in mean.rows().zip(norm.rows()) {
        let len = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        let scaled: Vec<f32> = r.iter().map(|x| x / len).collect();
        close(n, &scaled, 1e-5).unwrap();
    }
    let cut = ctx.embed(&texts, &EmbedParams::default().dim(10)).unwrap();
    assert_eq!(cut.shape(), (2, 10));
    assert_eq!(cut.row(1).unwrap(), &mean.row(1).unwrap()[..10]);
    assert_eq!(mean.to_vecs()[1], mean.row(1).unwrap());

    // Token lists give the same, and a batch equals each text alone.
    let ids: Vec<Vec<i32>> = texts.iter().map(|t| model.tokenize(t).unwrap()).collect();
    assert_eq!(ctx.embed_tokens(&ids, &EmbedParams::default()).unwrap(), mean);
    let alone = ctx.embed(&texts[1..], &EmbedParams::default()).unwrap();
    assert_eq!(alone.row(0), mean.row(1));

    // The library's cosine against one computed here.
    let (a, b) = (mean.row(0).unwrap(), mean.row(1).unwrap());
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    let c = eurollm::cosine_similarity(a, b).unwrap();
    assert!((c - dot / (na * nb)).abs() < 1e-5, "{c}");
    assert_eq!(eurollm::cosine_similarity(&[0.0, 0.0], &[1.0, 2.0]).unwrap(), 0.0);
}

#[test]
fn bad_embedding_input_is_an_error() {
    let Some(dir) = common::stories("bad_embedding_input_is_an_error") else { return };
    let model = Model::load(dir).unwrap();
    let mut ctx = model.context(&ContextParams::default()).unwrap();
    let none = EmbedParams::default().tokenize_flags(TokenizeFlags::NONE);
    assert_eq!(ctx.embed(&[""], &none).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(
        ctx.embed_tokens(&[vec![1, 99_999]], &EmbedParams::default()).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    let bad_flags = EmbedParams::default().tokenize_flags(TokenizeFlags::from_bits_retain(64));
    assert_eq!(ctx.embed(&["x"], &bad_flags).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(ctx.embed::<&str>(&[], &EmbedParams::default()).unwrap().n_rows(), 0);
    assert!(ctx.embed(&["still works"], &EmbedParams::default()).is_ok());
}
