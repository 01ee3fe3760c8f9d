//! Safe Rust API of libeurollm: run Europe's open language models (EuroLLM, Salamandra, Teuken,
//! Occiglot, Mistral, ...) inside a Rust program, through the library's stable C ABI
//! (`capi/eurollm.h`, bound by the [`sys`] crate `eurollm-sys`).
//!
//! - [`Model`]: weights and tokenizer, loaded once; `Send + Sync`, shared by any number of threads.
//! - [`Context`]: one sequence's KV cache on a model it borrows (`Context<'m>`): it cannot outlive
//!   the model, which the compiler checks.
//! - [`Generator`]: sampling on a context it borrows mutably, streamed as an [`Iterator`] of
//!   [`Piece`]s (token and text), or of tokens ([`Generator::tokens`]) or text
//!   ([`Generator::text`]).
//! - Every fallible call returns [`Result<T, Error>`](Result); an [`Error`] carries the library's
//!   status ([`ErrorKind`], [`Error::status`]) and message ([`Error::message`]).
//!
//! ```
//! use eurollm::{Context, ContextParams, GeneratorParams, Model};
//!
//! # fn main() -> eurollm::Result<()> {
//! # let Some(model_dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
//! let model = Model::load(&model_dir)?; // a Hugging Face directory: config.json, *.safetensors, ...
//! let mut ctx = Context::new(&model, &ContextParams::default())?;
//! let params = GeneratorParams::greedy().max_tokens(60);
//!
//! let mut story = String::new();
//! for piece in ctx.generate("", &params)? {
//!     story.push_str(&piece?.text);
//! }
//! assert!(story.starts_with("Once upon a time"));
//! # Ok(())
//! # }
//! ```
//!
//! - Embeddings: [`Context::embed`] returns [`Embeddings`] (a flat buffer with its shape, or
//!   `Vec<Vec<f32>>` through [`Embeddings::to_vecs`]).
//! - Several sequences per context ([`Context::decode_seqs`], [`Context::seq_copy`], ...), batched
//!   generation ([`Context::generators`], [`Generator::step_batch`]), context state
//!   ([`Context::save_state`]).
//! - Feature `experimental`: training (`trainer::Trainer`, LoRA and full fine-tuning) over
//!   `capi/eurollm_experimental.h`, without an ABI promise.
//!
//! Linking: `eurollm-sys` links `libeurollm.so` dynamically, found through `EUROLLM_LIB_DIR`,
//! pkg-config, or a CMake build of the repository (see its `build.rs`).

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

mod context;
mod embed;
mod error;
mod ffi;
mod generator;
mod log;
mod model;
#[cfg(feature = "experimental")]
pub mod trainer;

pub use eurollm_sys as sys;

pub use context::{Context, ContextParams, Precision, MAX_SEQUENCES};
pub use embed::{cosine_similarity, EmbedParams, Embeddings, Pooling};
pub use error::{status_string, Error, ErrorKind, Result};
pub use generator::{Generator, GeneratorParams, Piece, StopReason, Text, Tokens};
pub use log::{reset_log_callback, set_log_callback, LogLevel};
pub use model::{device_count, device_memory, device_name, Device, Model, ModelInfo, ModelParams, TokenizeFlags, WeightType};
#[cfg(feature = "experimental")]
pub use trainer::{Trainer, TrainerParams};

/// The version of the library actually loaded, as `major * 10000 + minor * 100 + patch`.
///
/// ```
/// assert_eq!(eurollm::version_number(), eurollm::sys::EUROLLM_VERSION_NUMBER as i32);
/// ```
pub fn version_number() -> i32 {
    // SAFETY: plain query.
    unsafe { sys::eurollm_version_number() }
}

/// The version string of the library actually loaded ("0.1.0").
pub fn version() -> String {
    // SAFETY: static storage, never NULL.
    unsafe { error::cstr_lossy(sys::eurollm_version_string()) }
}

/// Helpers of this crate's documentation examples; not part of the API.
#[doc(hidden)]
pub mod __doctest {
    use std::path::PathBuf;

    /// The stories260K test model: `EUROLLM_STORIES_DIR`, else `<repo>/../shared/models/stories260K`;
    /// `None` (the example then skips, saying so on stderr) when it is absent.
    pub fn stories_dir() -> Option<PathBuf> {
        let dir = std::env::var_os("EUROLLM_STORIES_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/models/stories260K"));
        if dir.join("config.json").exists() {
            Some(dir)
        } else {
            eprintln!("SKIP: stories260K not found at {} (set EUROLLM_STORIES_DIR)", dir.display());
            None
        }
    }
}
