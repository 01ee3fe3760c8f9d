//! [`Context`]: the KV cache, scratch buffers and threads of one sequence, borrowing its model.

use std::fmt;
use std::os::raw::c_void;
use std::ptr::NonNull;

use eurollm_sys as sys;

use crate::embed::{EmbedParams, Embeddings, Pooling};
use crate::error::{check, invalid, Error, ErrorKind, Result};
use crate::ffi::{c_path, catch_callback_panic, fill_buffer, resume_callback_panic, slice};
use crate::generator::{Generator, GeneratorParams};
use crate::model::{Model, WeightType};

/// Sequence ids run from 0 to `MAX_SEQUENCES - 1` (`EUROLLM_MAX_SEQUENCES`).
pub const MAX_SEQUENCES: usize = sys::EUROLLM_MAX_SEQUENCES as usize;

/// How activations meet bf16 (and, in prompts, q8_0/q4_0) weights in matrix products (`eurollm_precision`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// Float32 activations (float32 results, as `transformers` in float32).
    #[default]
    Exact,
    /// Activations rounded to bf16, as PyTorch's autocast and llama.cpp do: faster on CPUs with
    /// AVX512-BF16.
    Bf16,
}

impl Precision {
    pub(crate) fn from_raw(p: sys::eurollm_precision) -> Precision {
        if p == sys::eurollm_precision::EUROLLM_PRECISION_BF16 { Precision::Bf16 } else { Precision::Exact }
    }

    pub(crate) fn to_raw(self) -> sys::eurollm_precision {
        match self {
            Precision::Exact => sys::eurollm_precision::EUROLLM_PRECISION_EXACT,
            Precision::Bf16 => sys::eurollm_precision::EUROLLM_PRECISION_BF16,
        }
    }
}

/// How to create a context (`eurollm_context_params`). `Default` takes the library's defaults.
///
/// ```
/// let params = eurollm::ContextParams::default().n_ctx(512).n_threads(1).seed(7);
/// assert_eq!(params.n_ctx, 512);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextParams {
    /// Tokens the KV cache holds; 0 = min(the model's training context, 4096) (default).
    pub n_ctx: u32,
    /// Most tokens evaluated in one pass (default 512).
    pub n_batch: u32,
    /// CPU threads; 0 = one per core (default).
    pub n_threads: i32,
    /// Default seed of generators on this context (default 0).
    pub seed: u64,
    /// How activations meet bf16 weights (default [`Precision::Exact`]).
    pub precision: Precision,
    /// KV cache elements: [`WeightType::F32`] (default, exact) or [`WeightType::F16`] (half the
    /// memory; keys and values rounded to f16). Other types are refused when the context is created.
    pub kv_type: WeightType,
}

fn raw_context_params() -> sys::eurollm_context_params {
    let mut raw = sys::eurollm_context_params::default();
    // SAFETY: a valid, writable params struct of the version we pass.
    let s = unsafe { sys::eurollm_context_params_init(&mut raw, sys::EUROLLM_CONTEXT_PARAMS_VERSION) };
    debug_assert_eq!(s, sys::eurollm_status::EUROLLM_OK);
    raw
}

impl Default for ContextParams {
    fn default() -> Self {
        let raw = raw_context_params();
        ContextParams {
            n_ctx: raw.n_ctx,
            n_batch: raw.n_batch,
            n_threads: raw.n_threads,
            seed: raw.seed,
            precision: Precision::Exact,
            kv_type: WeightType::F32,
        }
    }
}

impl ContextParams {
    /// Set [`ContextParams::n_ctx`].
    pub fn n_ctx(mut self, n: u32) -> Self {
        self.n_ctx = n;
        self
    }
    /// Set [`ContextParams::n_batch`].
    pub fn n_batch(mut self, n: u32) -> Self {
        self.n_batch = n;
        self
    }
    /// Set [`ContextParams::n_threads`].
    pub fn n_threads(mut self, n: i32) -> Self {
        self.n_threads = n;
        self
    }
    /// Set [`ContextParams::seed`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }
    /// Set [`ContextParams::precision`].
    pub fn precision(mut self, p: Precision) -> Self {
        self.precision = p;
        self
    }
    /// Set [`ContextParams::kv_type`].
    pub fn kv_type(mut self, t: WeightType) -> Self {
        self.kv_type = t;
        self
    }

    fn to_raw(&self) -> sys::eurollm_context_params {
        let mut raw = raw_context_params();
        raw.n_ctx = self.n_ctx;
        raw.n_batch = self.n_batch;
        raw.n_threads = self.n_threads;
        raw.seed = self.seed;
        raw.precision = self.precision.to_raw();
        raw.kv_type = self.kv_type.to_raw();
        raw
    }
}

type AbortFn<'m> = Box<dyn FnMut() -> bool + Send + 'm>;

/// An inference context (`eurollm_context`) on a [`Model`] it borrows.
///
/// A context holds one sequence's KV cache. It is used by one thread at a time: it is `Send`
/// (it can move to another thread with its model borrow) but not `Sync`. Create any number of
/// contexts on one model. Dropping the context calls `eurollm_context_free`.
///
/// The borrow makes "context before model" a compile-time rule: a context cannot outlive its model.
///
/// ```compile_fail,E0505
/// # fn main() -> eurollm::Result<()> {
/// # let dir = "unused: this example must not compile";
/// let model = eurollm::Model::load(dir)?;
/// let ctx = eurollm::Context::new(&model, &eurollm::ContextParams::default())?;
/// drop(model); // error[E0505]: cannot move out of `model` because it is borrowed
/// println!("{}", ctx.n_ctx());
/// # Ok(())
/// # }
/// ```
///
/// The same code with the model dropped after its last use of the context compiles and runs:
///
/// ```
/// # fn main() -> eurollm::Result<()> {
/// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
/// let model = eurollm::Model::load(dir)?;
/// let ctx = eurollm::Context::new(&model, &eurollm::ContextParams::default())?;
/// println!("{}", ctx.n_ctx());
/// drop(ctx);
/// drop(model);
/// # Ok(())
/// # }
/// ```
///
/// Logits returned by [`Context::decode`] borrow the context until its next call:
///
/// ```compile_fail,E0499
/// # fn f(ctx: &mut eurollm::Context<'_>) -> eurollm::Result<()> {
/// let logits = ctx.decode(&[1])?;
/// ctx.decode(&[2])?; // error[E0499]: `*ctx` borrowed mutably twice
/// println!("{}", logits[0]);
/// # Ok(())
/// # }
/// # fn main() {}
/// ```
pub struct Context<'m> {
    raw: NonNull<sys::eurollm_context>,
    model: &'m Model,
    /// Installed abort callback; boxed twice so the C side holds a thin, stable pointer.
    abort: Option<Box<AbortFn<'m>>>,
}

// SAFETY: eurollm.h: "A context and the generator on it are used by one thread at a time" -- a
// context may move between threads, never be used by two at once (it is not Sync, and every
// mutating method takes &mut self). The model it borrows is Sync; the abort callback it owns is
// required to be Send.
unsafe impl Send for Context<'_> {}

impl<'m> Context<'m> {
    /// Create a context on `model`.
    pub fn new(model: &'m Model, params: &ContextParams) -> Result<Context<'m>> {
        let raw_params = params.to_raw();
        let mut out: *mut sys::eurollm_context = std::ptr::null_mut();
        // SAFETY: live model handle, valid params; `out` receives an owned handle on success.
        check(unsafe { sys::eurollm_context_init(model.as_ptr(), &raw_params, &mut out) })?;
        let raw =
            NonNull::new(out).ok_or_else(|| Error::new(ErrorKind::Generic, "eurollm_context_init returned NULL"))?;
        Ok(Context { raw, model, abort: None })
    }

    /// The model this context runs.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The raw handle, for calls the safe API does not wrap yet. It stays owned by `self`.
    pub fn as_ptr(&self) -> *mut sys::eurollm_context {
        self.raw.as_ptr()
    }

    /// Capacity of the KV cache in tokens.
    pub fn n_ctx(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::eurollm_context_n_ctx(self.raw.as_ptr()) as usize }
    }

    /// Tokens currently held in the KV cache.
    pub fn n_past(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::eurollm_context_n_past(self.raw.as_ptr()) as usize }
    }

    /// Forget every cached token.
    pub fn reset(&mut self) -> Result<()> {
        // SAFETY: live handle, used by this thread only (&mut self).
        check(unsafe { sys::eurollm_context_reset(self.raw.as_ptr()) })?;
        Ok(())
    }

    /// Evaluate `tokens` after those already cached; returns the logits of the last one
    /// (`n_vocab` floats), borrowed until the next call on the context.
    ///
    /// ```
    /// # fn main() -> eurollm::Result<()> {
    /// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
    /// let model = eurollm::Model::load(dir)?;
    /// let mut ctx = model.context(&Default::default())?;
    /// let prompt = model.tokenize("Once upon a")?;
    /// let logits = ctx.decode(&prompt)?;
    /// assert_eq!(logits.len(), model.n_vocab());
    /// let best = (0..logits.len()).max_by(|&a, &b| logits[a].total_cmp(&logits[b])).unwrap();
    /// assert_eq!(model.detokenize(&[best as i32])?, "time");
    /// assert_eq!(ctx.n_past(), prompt.len());
    /// # Ok(())
    /// # }
    /// ```
    pub fn decode(&mut self, tokens: &[i32]) -> Result<&[f32]> {
        let mut logits: *const f32 = std::ptr::null();
        // SAFETY: live handle; `tokens` valid for its length; `logits` receives a borrowed pointer.
        let status =
            unsafe { sys::eurollm_context_decode(self.raw.as_ptr(), tokens.as_ptr(), tokens.len(), &mut logits) };
        resume_callback_panic();
        check(status)?;
        // SAFETY: n_vocab floats owned by the context, valid until its next call, which the
        // returned borrow of `self` excludes.
        Ok(unsafe { slice(logits, self.model.n_vocab()) })
    }

    /// Evaluate `tokens` after those already cached; returns the logits of every one of them,
    /// row-major: `tokens.len()` rows of [`Model::n_vocab`] floats.
    pub fn decode_all(&mut self, tokens: &[i32]) -> Result<Vec<f32>> {
        let n = tokens
            .len()
            .checked_mul(self.model.n_vocab())
            .ok_or_else(|| Error::new(ErrorKind::OutOfMemory, "tokens x n_vocab overflows"))?;
        let mut out = vec![0f32; n];
        // A non-NULL pointer even for an empty buffer.
        let ptr = if out.is_empty() { NonNull::<f32>::dangling().as_ptr() } else { out.as_mut_ptr() };
        // SAFETY: live handle; `out` holds tokens.len() * n_vocab floats.
        let status =
            unsafe { sys::eurollm_context_decode_all(self.raw.as_ptr(), tokens.as_ptr(), tokens.len(), ptr, n) };
        resume_callback_panic();
        check(status)?;
        Ok(out)
    }

    /// Install an abort callback, polled between layers and tokens: return `false` to stop the
    /// work in progress, which then fails with [`ErrorKind::Aborted`]. Replaces any previous one.
    /// A panic in the callback stops the work and is resumed when the call returns.
    ///
    /// ```
    /// # fn main() -> eurollm::Result<()> {
    /// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
    /// let model = eurollm::Model::load(dir)?;
    /// let mut ctx = model.context(&Default::default())?;
    /// ctx.set_abort_callback(|| false)?; // stop at once
    /// let err = ctx.decode(&[1]).unwrap_err();
    /// assert_eq!(err.kind(), eurollm::ErrorKind::Aborted);
    /// ctx.clear_abort_callback()?;
    /// assert!(ctx.decode(&[1]).is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_abort_callback<F>(&mut self, f: F) -> Result<()>
    where
        F: FnMut() -> bool + Send + 'm,
    {
        let mut boxed: Box<AbortFn<'m>> = Box::new(Box::new(f));
        let user = &mut *boxed as *mut AbortFn<'m> as *mut c_void;
        // SAFETY: live handle; `user` points into a box kept in `self.abort` until replaced,
        // cleared, or the context is freed (Drop frees the context before the box).
        check(unsafe { sys::eurollm_context_set_abort(self.raw.as_ptr(), Some(abort_trampoline), user) })?;
        self.abort = Some(boxed);
        Ok(())
    }

    /// Remove the abort callback.
    pub fn clear_abort_callback(&mut self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::eurollm_context_set_abort(self.raw.as_ptr(), None, std::ptr::null_mut()) })?;
        self.abort = None;
        Ok(())
    }

    /// A generator on this context, which it borrows mutably while it lives. The cache is kept:
    /// tokens appended continue the cached sequence [`GeneratorParams::seq_id`] ([`Context::reset`]
    /// or [`Context::seq_remove`] first for a fresh one).
    pub fn generator(&mut self, params: &GeneratorParams) -> Result<Generator<'_>> {
        Generator::new(self.raw, self.model, params)
    }

    /// A generator primed with `prompt`, tokenized as the model says (BOS when the model's
    /// tokenizer_config.json adds one, special tokens parsed); an empty prompt starts from BOS
    /// alone. This is what the `eurollm generate` CLI does.
    ///
    /// ```
    /// # fn main() -> eurollm::Result<()> {
    /// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
    /// let model = eurollm::Model::load(dir)?;
    /// let mut ctx = model.context(&Default::default())?;
    /// let params = eurollm::GeneratorParams::greedy().max_tokens(20);
    /// for piece in ctx.generate("Once upon a time", &params)?.text() {
    ///     print!("{}", piece?);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn generate(&mut self, prompt: &str, params: &GeneratorParams) -> Result<Generator<'_>> {
        let model = self.model;
        let mut ids = model.tokenize(prompt)?;
        if ids.is_empty() {
            let bos = model
                .bos_token()
                .ok_or_else(|| Error::new(ErrorKind::InvalidArgument, "empty prompt and the model has no BOS token"))?;
            ids.push(bos);
        }
        let mut gen = self.generator(params)?;
        gen.append_tokens(&ids)?;
        Ok(gen)
    }

    /// Generate the whole text for `prompt` in one call (`eurollm_generate_text`): the prompt is
    /// tokenized with the model's defaults, and the cache continues (as for [`Context::generator`]).
    pub fn generate_text(&mut self, prompt: &str, params: &GeneratorParams) -> Result<String> {
        let raw_params = params.to_raw();
        // The text is at most (tokens generated) x (longest vocabulary piece) bytes; the buffer must
        // be large enough at the first try, since a retry would generate again.
        let room = self.n_ctx().saturating_sub(self.n_past());
        let max_new = if params.max_tokens > 0 { (params.max_tokens as usize).min(room) } else { room };
        let cap = max_new.saturating_mul(self.model.max_piece_len().max(4)).saturating_add(4096);
        let mut buf = vec![0u8; cap];
        let mut len = 0usize;
        // SAFETY: live handle; `prompt` valid for its length; `buf` holds `cap` bytes.
        let status = unsafe {
            sys::eurollm_generate_text(
                self.raw.as_ptr(),
                prompt.as_ptr() as *const std::os::raw::c_char,
                prompt.len(),
                &raw_params,
                buf.as_mut_ptr() as *mut std::os::raw::c_char,
                cap,
                &mut len,
            )
        };
        resume_callback_panic();
        check(status)?;
        buf.truncate(len.min(cap));
        Ok(String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }
}

impl<'m> Context<'m> {
    // ---- several sequences ----

    /// Tokens held for sequence `seq` (0 to [`MAX_SEQUENCES`] - 1). The single-sequence calls
    /// ([`Context::decode`], [`Context::n_past`], a default generator) act on sequence 0.
    pub fn seq_n_past(&self, seq: i32) -> Result<usize> {
        let mut n = 0u32;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::eurollm_context_seq_n_past(self.raw.as_ptr(), seq, &mut n) })?;
        Ok(n as usize)
    }

    /// Forget positions `p0..` of a sequence (`p0 = 0` removes it).
    pub fn seq_remove(&mut self, seq: i32, p0: u32) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::eurollm_context_seq_remove(self.raw.as_ptr(), seq, p0) })?;
        Ok(())
    }

    /// Make the empty sequence `dst` share the first `n` positions of `src` (`None`: all), without
    /// copying or evaluating them again: prefix sharing.
    pub fn seq_copy(&mut self, src: i32, dst: i32, n: Option<u32>) -> Result<()> {
        let n = match n {
            None => -1,
            Some(n) => i32::try_from(n).map_err(|_| invalid("n is too large"))?,
        };
        // SAFETY: live handle.
        check(unsafe { sys::eurollm_context_seq_copy(self.raw.as_ptr(), src, dst, n) })?;
        Ok(())
    }

    /// Forget every sequence except `seq`.
    pub fn seq_keep(&mut self, seq: i32) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::eurollm_context_seq_keep(self.raw.as_ptr(), seq) })?;
        Ok(())
    }

    /// Evaluate runs of tokens for several sequences in one batch: `(seq, tokens)` continues
    /// sequence `seq`. Nothing is evaluated on an error (ContextFull, InvalidArgument for a
    /// repeated or out-of-range sequence or token id). Read the results with [`Context::seq_logits`].
    ///
    /// ```
    /// # fn main() -> eurollm::Result<()> {
    /// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
    /// let model = eurollm::Model::load(dir)?;
    /// let mut ctx = model.context(&Default::default())?;
    /// let (a, b) = (model.tokenize("Once upon a time")?, model.tokenize("The dog")?);
    /// ctx.decode_seqs(&[(0, &a[..]), (1, &b[..])])?;
    /// assert_eq!((ctx.seq_n_past(0)?, ctx.seq_n_past(1)?), (a.len(), b.len()));
    /// let logits_b = ctx.seq_logits(1)?.to_vec();
    /// assert_eq!(logits_b.len(), model.n_vocab());
    /// # Ok(())
    /// # }
    /// ```
    pub fn decode_seqs(&mut self, batch: &[(i32, &[i32])]) -> Result<()> {
        let seqs: Vec<i32> = batch.iter().map(|(s, _)| *s).collect();
        let ptrs: Vec<*const i32> = batch.iter().map(|(_, t)| t.as_ptr()).collect();
        let lens: Vec<usize> = batch.iter().map(|(_, t)| t.len()).collect();
        // SAFETY: live handle; three arrays of batch.len() entries; each token run valid for its length.
        let status = unsafe {
            sys::eurollm_context_decode_seqs(
                self.raw.as_ptr(),
                seqs.as_ptr(),
                ptrs.as_ptr(),
                lens.as_ptr(),
                batch.len(),
            )
        };
        resume_callback_panic();
        check(status)?;
        Ok(())
    }

    /// Logits of the last evaluated token of sequence `seq`, borrowed until the next call on the
    /// context. InvalidArgument if the sequence has no evaluated token.
    pub fn seq_logits(&mut self, seq: i32) -> Result<&[f32]> {
        let mut p: *const f32 = std::ptr::null();
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::eurollm_context_seq_logits(self.raw.as_ptr(), seq, &mut p) })?;
        // SAFETY: n_vocab floats owned by the context until its next call, excluded by the borrow.
        Ok(unsafe { slice(p, self.model.n_vocab()) })
    }

    // ---- state ----

    /// The context's state (every sequence's tokens, last logits and KV cache) as bytes, for
    /// [`Context::load_state`] on a context of the same model.
    pub fn save_state(&self) -> Result<Vec<u8>> {
        // SAFETY: live handle; fill_buffer passes a buffer of `cap` bytes (or NULL with 0).
        fill_buffer(0, 0, |buf: *mut u8, cap, n| unsafe {
            sys::eurollm_context_state_save(self.raw.as_ptr(), buf.cast(), cap, n)
        })
    }

    /// Replace the context's state with one saved by [`Context::save_state`]. A state of another
    /// model, or damaged bytes, are InvalidArgument and leave the context unchanged.
    pub fn load_state(&mut self, state: &[u8]) -> Result<()> {
        // SAFETY: live handle; `state` valid for its length (copied).
        check(unsafe { sys::eurollm_context_state_load(self.raw.as_ptr(), state.as_ptr().cast(), state.len()) })?;
        Ok(())
    }

    /// Save the state to a file, written atomically.
    pub fn save_state_file(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = c_path(path.as_ref())?;
        // SAFETY: live handle; valid C string.
        check(unsafe { sys::eurollm_context_state_save_file(self.raw.as_ptr(), path.as_ptr()) })?;
        Ok(())
    }

    /// Load the state from a file written by [`Context::save_state_file`].
    pub fn load_state_file(&mut self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = c_path(path.as_ref())?;
        // SAFETY: live handle; valid C string.
        check(unsafe { sys::eurollm_context_state_load_file(self.raw.as_ptr(), path.as_ptr()) })?;
        Ok(())
    }

    // ---- several generators ----

    /// Generators on several sequences of this context at once (one per element of `params`,
    /// each naming a different [`GeneratorParams::seq_id`]), to be stepped together with
    /// [`Generator::step_batch`] (continuous batching). They borrow the context mutably, all
    /// together.
    ///
    /// ```
    /// # fn main() -> eurollm::Result<()> {
    /// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
    /// use eurollm::{Generator, GeneratorParams};
    /// let model = eurollm::Model::load(dir)?;
    /// let mut ctx = model.context(&Default::default())?;
    /// let prompts = ["Once upon a time", "The dog", "Lily"];
    /// let params: Vec<_> = (0..3).map(|i| GeneratorParams::greedy().max_tokens(20).seq_id(i)).collect();
    /// let mut gens = ctx.generators(&params)?;
    /// for (g, p) in gens.iter_mut().zip(prompts) {
    ///     g.append_tokens(&model.tokenize(p)?)?;
    /// }
    /// let mut texts = vec![String::new(); 3];
    /// loop {
    ///     let steps = Generator::step_batch(&mut gens)?;
    ///     for (i, g) in gens.iter().enumerate() {
    ///         texts[i].push_str(g.text_delta()?);
    ///     }
    ///     if steps.iter().all(Option::is_none) {
    ///         break;
    ///     }
    /// }
    /// assert!(texts.iter().all(|t| !t.is_empty()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn generators(&mut self, params: &[GeneratorParams]) -> Result<Vec<Generator<'_>>> {
        let mut gens = Vec::with_capacity(params.len());
        for p in params {
            gens.push(Generator::new(self.raw, self.model, p)?);
        }
        Ok(gens)
    }

    // ---- embeddings ----

    /// Embed texts of any lengths in one call; each is embedded as if alone, tokenized with
    /// [`EmbedParams::tokenize_flags`]. The context's cache is used as scratch: every sequence is
    /// cleared. One row per text, or one per token with [`Pooling::None`].
    ///
    /// ```
    /// # fn main() -> eurollm::Result<()> {
    /// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
    /// let model = eurollm::Model::load(dir)?;
    /// let mut ctx = model.context(&Default::default())?;
    /// let params = eurollm::EmbedParams::default().normalize(true);
    /// let e = ctx.embed(&["a cat", "a kitten", "the rocket launch"], &params)?;
    /// assert_eq!(e.shape(), (3, model.n_embd()));
    /// let v = e.to_vecs(); // Vec<Vec<f32>>
    /// let near = eurollm::cosine_similarity(&v[0], &v[1])?;
    /// let far = eurollm::cosine_similarity(&v[0], &v[2])?;
    /// println!("cat~kitten {near:.3}, cat~rocket {far:.3}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn embed<S: AsRef<str>>(&mut self, texts: &[S], params: &EmbedParams) -> Result<Embeddings> {
        let ptrs: Vec<*const std::os::raw::c_char> = texts.iter().map(|t| t.as_ref().as_ptr().cast()).collect();
        let lens: Vec<usize> = texts.iter().map(|t| t.as_ref().len()).collect();
        let rows_guess = if params.pooling == Pooling::None {
            let mut total = 0usize;
            for t in texts {
                total += self.model.tokenize_with(t.as_ref(), params.tokenize_flags)?.len();
            }
            total
        } else {
            texts.len()
        };
        let raw = params.to_raw();
        let ctx = self.raw.as_ptr();
        self.run_embed(rows_guess, params, |out, cap, rows, dim| {
            // SAFETY: live handle; arrays of texts.len() entries, each text valid for its length;
            // `out` holds `cap` floats.
            unsafe {
                sys::eurollm_embed_texts(ctx, ptrs.as_ptr(), lens.as_ptr(), ptrs.len(), &raw, out, cap, rows, dim)
            }
        })
    }

    /// Embed token lists (as [`Context::embed`], without tokenizing).
    pub fn embed_tokens<T: AsRef<[i32]>>(&mut self, tokens: &[T], params: &EmbedParams) -> Result<Embeddings> {
        let ptrs: Vec<*const i32> = tokens.iter().map(|t| t.as_ref().as_ptr()).collect();
        let lens: Vec<usize> = tokens.iter().map(|t| t.as_ref().len()).collect();
        let rows_guess = if params.pooling == Pooling::None { lens.iter().sum() } else { tokens.len() };
        let raw = params.to_raw();
        let ctx = self.raw.as_ptr();
        self.run_embed(rows_guess, params, |out, cap, rows, dim| {
            // SAFETY: live handle; arrays of tokens.len() entries, each list valid for its length;
            // `out` holds `cap` floats.
            unsafe {
                sys::eurollm_embed_tokens(ctx, ptrs.as_ptr(), lens.as_ptr(), ptrs.len(), &raw, out, cap, rows, dim)
            }
        })
    }

    /// Call an embedding function with a buffer sized for `rows_guess` rows, and once more with the
    /// reported shape if that was short.
    fn run_embed(
        &mut self,
        rows_guess: usize,
        params: &EmbedParams,
        mut call: impl FnMut(*mut f32, usize, &mut usize, &mut usize) -> sys::eurollm_status,
    ) -> Result<Embeddings> {
        let n_embd = self.model.n_embd();
        let dim_guess = if params.dim > 0 { (params.dim as usize).min(n_embd) } else { n_embd };
        let mut cap = rows_guess.saturating_mul(dim_guess);
        for _ in 0..2 {
            let mut out = vec![0f32; cap];
            let ptr = if out.is_empty() { NonNull::<f32>::dangling().as_ptr() } else { out.as_mut_ptr() };
            let (mut rows, mut dim) = (0usize, 0usize);
            let status = call(ptr, cap, &mut rows, &mut dim);
            resume_callback_panic();
            let need = rows.saturating_mul(dim);
            if status == sys::eurollm_status::EUROLLM_ERR_BUFFER_TOO_SMALL && need > cap {
                cap = need;
                continue;
            }
            check(status)?;
            out.truncate(need);
            return Ok(Embeddings::new(out, rows, dim));
        }
        Err(Error::new(ErrorKind::BufferTooSmall, "the embedding shape kept changing"))
    }
}

unsafe extern "C" fn abort_trampoline(user: *mut c_void) -> bool {
    // SAFETY: `user` is the AbortFn box installed by set_abort_callback, alive while installed;
    // the context (and so this callback) is used by one thread at a time.
    let f = unsafe { &mut *(user as *mut AbortFn<'_>) };
    catch_callback_panic(false, f)
}

impl Drop for Context<'_> {
    fn drop(&mut self) {
        // SAFETY: owned handle freed once; no Generator borrows the context any more. The abort
        // box is dropped after this, when the library can no longer call it.
        unsafe { sys::eurollm_context_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context").field("n_ctx", &self.n_ctx()).field("n_past", &self.n_past()).finish()
    }
}
