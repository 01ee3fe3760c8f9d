//! Embeddings: [`Context::embed`](crate::Context::embed) and
//! [`Context::embed_tokens`](crate::Context::embed_tokens) return [`Embeddings`], a flat
//! row-major buffer with its shape.

use eurollm_sys as sys;

use crate::error::{check, invalid, Result};
use crate::model::TokenizeFlags;

/// How token states become one vector (`eurollm_pooling`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Pooling {
    /// Mean of the final hidden states of all tokens, BOS included (default).
    #[default]
    Mean,
    /// The last token's final hidden state.
    Last,
    /// The first token's final hidden state.
    First,
    /// No pooling: one row per token, for all inputs one after the other.
    None,
}

impl Pooling {
    fn to_raw(self) -> sys::eurollm_pooling {
        match self {
            Pooling::Mean => sys::eurollm_pooling::EUROLLM_POOLING_MEAN,
            Pooling::Last => sys::eurollm_pooling::EUROLLM_POOLING_LAST,
            Pooling::First => sys::eurollm_pooling::EUROLLM_POOLING_FIRST,
            Pooling::None => sys::eurollm_pooling::EUROLLM_POOLING_NONE,
        }
    }

    fn from_raw(p: sys::eurollm_pooling) -> Pooling {
        match p {
            sys::eurollm_pooling::EUROLLM_POOLING_LAST => Pooling::Last,
            sys::eurollm_pooling::EUROLLM_POOLING_FIRST => Pooling::First,
            sys::eurollm_pooling::EUROLLM_POOLING_NONE => Pooling::None,
            _ => Pooling::Mean,
        }
    }
}

/// Embedding settings (`eurollm_embed_params`). `Default` takes the library's defaults.
///
/// ```
/// let p = eurollm::EmbedParams::default().pooling(eurollm::Pooling::Last).normalize(true).dim(64);
/// assert_eq!((p.pooling, p.normalize, p.dim), (eurollm::Pooling::Last, true, 64));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedParams {
    /// Pooling (default [`Pooling::Mean`]).
    pub pooling: Pooling,
    /// L2-normalise each row (default false).
    pub normalize: bool,
    /// Keep the first `dim` components (Matryoshka); 0 = all (default).
    pub dim: u32,
    /// How [`Context::embed`](crate::Context::embed) tokenizes (default
    /// [`TokenizeFlags::MODEL_DEFAULT`]).
    pub tokenize_flags: TokenizeFlags,
}

fn raw_embed_params() -> sys::eurollm_embed_params {
    let mut raw = sys::eurollm_embed_params::default();
    // SAFETY: a valid, writable params struct of the version we pass.
    let s = unsafe { sys::eurollm_embed_params_init(&mut raw, sys::EUROLLM_EMBED_PARAMS_VERSION) };
    debug_assert_eq!(s, sys::eurollm_status::EUROLLM_OK);
    raw
}

impl Default for EmbedParams {
    fn default() -> Self {
        let r = raw_embed_params();
        EmbedParams {
            pooling: Pooling::from_raw(r.pooling),
            normalize: r.normalize,
            dim: r.dim,
            tokenize_flags: TokenizeFlags::from_bits_retain(r.tokenize_flags),
        }
    }
}

impl EmbedParams {
    /// Set [`EmbedParams::pooling`].
    pub fn pooling(mut self, pooling: Pooling) -> Self {
        self.pooling = pooling;
        self
    }
    /// Set [`EmbedParams::normalize`].
    pub fn normalize(mut self, on: bool) -> Self {
        self.normalize = on;
        self
    }
    /// Set [`EmbedParams::dim`].
    pub fn dim(mut self, dim: u32) -> Self {
        self.dim = dim;
        self
    }
    /// Set [`EmbedParams::tokenize_flags`].
    pub fn tokenize_flags(mut self, flags: TokenizeFlags) -> Self {
        self.tokenize_flags = flags;
        self
    }

    pub(crate) fn to_raw(&self) -> sys::eurollm_embed_params {
        let mut r = raw_embed_params();
        r.pooling = self.pooling.to_raw();
        r.normalize = self.normalize;
        r.dim = self.dim;
        r.tokenize_flags = self.tokenize_flags.bits();
        r
    }
}

/// Embedding vectors: `n_rows` rows of `dim` floats, row-major in one buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    data: Vec<f32>,
    n_rows: usize,
    dim: usize,
}

impl Embeddings {
    pub(crate) fn new(data: Vec<f32>, n_rows: usize, dim: usize) -> Embeddings {
        debug_assert_eq!(data.len(), n_rows * dim);
        Embeddings { data, n_rows, dim }
    }

    /// Number of rows (inputs, or tokens with [`Pooling::None`]).
    pub fn n_rows(&self) -> usize {
        self.n_rows
    }

    /// Length of each row.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// `(n_rows, dim)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.n_rows, self.dim)
    }

    /// Row `i`, or `None` past the end.
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        (i < self.n_rows).then(|| &self.data[i * self.dim..(i + 1) * self.dim])
    }

    /// The rows in order.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f32]> + '_ {
        (0..self.n_rows).map(move |i| &self.data[i * self.dim..(i + 1) * self.dim])
    }

    /// The flat row-major buffer.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The flat row-major buffer, owned.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }

    /// One `Vec` per row.
    pub fn to_vecs(&self) -> Vec<Vec<f32>> {
        self.rows().map(<[f32]>::to_vec).collect()
    }
}

/// Cosine similarity of two vectors of the same length (0 when either is all zeros), computed by
/// the library (`eurollm_cosine_similarity`).
///
/// ```
/// let s = eurollm::cosine_similarity(&[1.0, 0.0], &[1.0, 1.0]).unwrap();
/// assert!((s - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
/// assert!(eurollm::cosine_similarity(&[1.0], &[1.0, 2.0]).is_err());
/// ```
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Result<f32> {
    if a.len() != b.len() {
        return Err(invalid(format!("vectors of different lengths ({} and {})", a.len(), b.len())));
    }
    let mut out = 0f32;
    // SAFETY: both slices hold a.len() floats.
    check(unsafe { sys::eurollm_cosine_similarity(a.as_ptr(), b.as_ptr(), a.len(), &mut out) })?;
    Ok(out)
}
