//! generate: stream text from a model with the `eurollm` crate.
//!
//!     cd bindings/rust
//!     cargo run -p eurollm-samples --bin generate -- MODEL_DIR -p "Once upon a time" -n 60 --temp 0
//!
//! Options follow the `eurollm generate` CLI of the C library, and for the same options the output
//! is the same (the sample's test checks that):
//!   -p, --prompt TEXT      prompt (empty: start from BOS alone)
//!   -n, --max-tokens N     tokens to generate (default 256)
//!   --temp T               temperature; 0 = greedy (default 0.8)
//!   --top-k K  --top-p P  --min-p P  --repeat-penalty R  --seed S
//!   --stop TEXT            stop when TEXT is generated (repeatable)
//!   --ignore-eos           do not stop at end-of-sequence tokens
//!   -t, --threads N        CPU threads (default: one per core)
//!   -c, --ctx N            context size in tokens
//!   -v, --verbose          print timings to stderr

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use eurollm::{Context, ContextParams, GeneratorParams, Model};

struct Args {
    model: String,
    prompt: String,
    gen: GeneratorParams,
    ctx: ContextParams,
    stops: Vec<String>,
    verbose: bool,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        model: String::new(),
        prompt: String::new(),
        gen: GeneratorParams::default(),
        ctx: ContextParams::default(),
        stops: Vec::new(),
        verbose: false,
    };
    fn num<T: std::str::FromStr>(opt: &str, v: Option<String>) -> Result<T, String> {
        let v = v.ok_or_else(|| format!("option {opt} needs a value"))?;
        v.parse().map_err(|_| format!("option {opt} expects a number, got '{v}'"))
    }
    while let Some(opt) = argv.next() {
        match opt.as_str() {
            "-p" | "--prompt" => a.prompt = argv.next().ok_or("option -p needs a value")?,
            "-n" | "--max-tokens" => a.gen.max_tokens = num(&opt, argv.next())?,
            "--temp" => a.gen.temperature = num(&opt, argv.next())?,
            "--top-k" => a.gen.top_k = num(&opt, argv.next())?,
            "--top-p" => a.gen.top_p = num(&opt, argv.next())?,
            "--min-p" => a.gen.min_p = num(&opt, argv.next())?,
            "--repeat-penalty" => a.gen.repetition_penalty = num(&opt, argv.next())?,
            "--seed" => a.gen.seed = num(&opt, argv.next())?,
            "--stop" => a.stops.push(argv.next().ok_or("option --stop needs a value")?),
            "--ignore-eos" => a.gen.ignore_eos = true,
            "-t" | "--threads" => a.ctx.n_threads = num(&opt, argv.next())?,
            "-c" | "--ctx" => a.ctx.n_ctx = num(&opt, argv.next())?,
            "-v" | "--verbose" => a.verbose = true,
            _ if opt.starts_with('-') => return Err(format!("unknown option {opt}")),
            _ if a.model.is_empty() => a.model = opt,
            _ => return Err(format!("unexpected argument '{opt}'")),
        }
    }
    if a.model.is_empty() {
        return Err("usage: generate MODEL [-p PROMPT] [-n N] [--temp T] [--seed S] ...".into());
    }
    Ok(a)
}

fn run(a: Args) -> eurollm::Result<()> {
    let t0 = Instant::now();
    let model = Model::load(&a.model)?;
    let mut ctx = Context::new(&model, &a.ctx)?;
    let mut gen = ctx.generate(&a.prompt, &a.gen)?;
    for s in &a.stops {
        gen.add_stop_string(s)?;
    }
    let t1 = Instant::now();
    let mut out = std::io::stdout().lock();
    let mut n = 0usize;
    for piece in &mut gen {
        let piece = piece?;
        n += piece.token.is_some() as usize;
        let _ = out.write_all(piece.text.as_bytes());
        let _ = out.flush();
    }
    let _ = writeln!(out);
    if a.verbose {
        let secs = t1.elapsed().as_secs_f64();
        eprintln!(
            "load {:.3} s | {n} tokens in {secs:.3} s ({:.1} tok/s) | stop: {:?}",
            (t1 - t0).as_secs_f64(),
            n as f64 / secs.max(1e-9),
            gen.stop_reason()
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("generate: {msg}");
            return ExitCode::from(2);
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("generate: error: {e}");
            ExitCode::from(1)
        }
    }
}
