//! [`Generator`]: the prepare (append tokens) / step / finalize loop of text generation, streamed
//! as an [`Iterator`].

use std::fmt;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_void};
use std::ptr::NonNull;

use eurollm_sys as sys;

use crate::error::{check, Error, ErrorKind, Result};
use crate::ffi::{catch_callback_panic, resume_callback_panic, slice};
use crate::model::{Model, TokenizeFlags};

/// Sampling and stopping settings of a generator (`eurollm_generator_params`). `Default` takes the
/// library's defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, 256 tokens).
///
/// ```
/// let p = eurollm::GeneratorParams::default().temperature(0.7).top_k(20).seed(42).max_tokens(64);
/// assert_eq!((p.temperature, p.top_k, p.seed, p.max_tokens), (0.7, 20, 42, 64));
/// assert_eq!(eurollm::GeneratorParams::greedy().temperature, 0.0);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorParams {
    /// New tokens at most; <= 0 means until the context is full (default 256).
    pub max_tokens: i32,
    /// Temperature; 0 = greedy, argmax (default 0.8).
    pub temperature: f32,
    /// Top-k; 0 = off (default 40).
    pub top_k: i32,
    /// Top-p (nucleus); 1 = off (default 0.95).
    pub top_p: f32,
    /// Min-p; 0 = off (default 0.05).
    pub min_p: f32,
    /// Repetition penalty, Hugging Face style; 1 = off (default).
    pub repetition_penalty: f32,
    /// Frequency penalty, OpenAI style, times the count; 0 = off (default).
    pub frequency_penalty: f32,
    /// Presence penalty, OpenAI style, once per seen token; 0 = off (default).
    pub presence_penalty: f32,
    /// Tokens the penalties look back over; -1 = all (default 64).
    pub penalty_last_n: i32,
    /// Sampling seed; 0 = the context's seed (default).
    pub seed: u64,
    /// Keep going past the model's end-of-generation ids (default false).
    pub ignore_eos: bool,
    /// The context sequence this generator extends (default 0); see [`Context::generators`](crate::Context::generators).
    pub seq_id: i32,
}

fn raw_generator_params() -> sys::eurollm_generator_params {
    let mut raw = sys::eurollm_generator_params::default();
    // SAFETY: a valid, writable params struct of the version we pass.
    let s = unsafe { sys::eurollm_generator_params_init(&mut raw, sys::EUROLLM_GENERATOR_PARAMS_VERSION) };
    debug_assert_eq!(s, sys::eurollm_status::EUROLLM_OK);
    raw
}

impl Default for GeneratorParams {
    fn default() -> Self {
        let r = raw_generator_params();
        GeneratorParams {
            max_tokens: r.max_tokens,
            temperature: r.temperature,
            top_k: r.top_k,
            top_p: r.top_p,
            min_p: r.min_p,
            repetition_penalty: r.repetition_penalty,
            frequency_penalty: r.frequency_penalty,
            presence_penalty: r.presence_penalty,
            penalty_last_n: r.penalty_last_n,
            seed: r.seed,
            ignore_eos: r.ignore_eos,
            seq_id: r.seq_id,
        }
    }
}

macro_rules! setters {
    ($($(#[$m:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$m])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = value;
                self
            }
        )*
    };
}

impl GeneratorParams {
    /// The defaults with temperature 0: greedy (argmax) decoding.
    pub fn greedy() -> Self {
        GeneratorParams { temperature: 0.0, ..GeneratorParams::default() }
    }

    setters! {
        /// Set [`GeneratorParams::max_tokens`].
        max_tokens: i32,
        /// Set [`GeneratorParams::temperature`].
        temperature: f32,
        /// Set [`GeneratorParams::top_k`].
        top_k: i32,
        /// Set [`GeneratorParams::top_p`].
        top_p: f32,
        /// Set [`GeneratorParams::min_p`].
        min_p: f32,
        /// Set [`GeneratorParams::repetition_penalty`].
        repetition_penalty: f32,
        /// Set [`GeneratorParams::frequency_penalty`].
        frequency_penalty: f32,
        /// Set [`GeneratorParams::presence_penalty`].
        presence_penalty: f32,
        /// Set [`GeneratorParams::penalty_last_n`].
        penalty_last_n: i32,
        /// Set [`GeneratorParams::seed`].
        seed: u64,
        /// Set [`GeneratorParams::ignore_eos`].
        ignore_eos: bool,
        /// Set [`GeneratorParams::seq_id`].
        seq_id: i32,
    }

    pub(crate) fn to_raw(&self) -> sys::eurollm_generator_params {
        let mut r = raw_generator_params();
        r.max_tokens = self.max_tokens;
        r.temperature = self.temperature;
        r.top_k = self.top_k;
        r.top_p = self.top_p;
        r.min_p = self.min_p;
        r.repetition_penalty = self.repetition_penalty;
        r.frequency_penalty = self.frequency_penalty;
        r.presence_penalty = self.presence_penalty;
        r.penalty_last_n = self.penalty_last_n;
        r.seed = self.seed;
        r.ignore_eos = self.ignore_eos;
        r.seq_id = self.seq_id;
        r
    }
}

/// Why a generator finished (`eurollm_stop_reason`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// An end-of-generation token or a stop token.
    Eos,
    /// A stop string.
    StopString,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The context is full.
    ContextFull,
    /// The token callback returned false.
    Callback,
    /// A reason this version of the crate does not know.
    Other(u32),
}

/// One step of a [`Generator`] seen as an iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The sampled token; `None` for the last item when generation ended with text still held
    /// back (the start of a stop string that never completed, for instance).
    pub token: Option<i32>,
    /// The text this step made final (never a broken UTF-8 sequence nor part of a stop string;
    /// may be empty).
    pub text: String,
}

type TokenFn<'c> = Box<dyn FnMut(Option<i32>, &str) -> bool + 'c>;

/// Text generation on a [`Context`](crate::Context) (`eurollm_generator`), which it borrows
/// mutably while it lives, so the context cannot be used meanwhile. One sequence of the context
/// per generator; [`Context::generators`](crate::Context::generators) makes several, stepped
/// together by [`Generator::step_batch`]. Dropping it calls `eurollm_generator_free`.
///
/// A generator is an [`Iterator`] of [`Piece`]s (token and text); [`Generator::tokens`] and
/// [`Generator::text`] iterate over just one of them. Errors end the iteration after being
/// yielded once.
///
/// ```
/// # fn main() -> eurollm::Result<()> {
/// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
/// use eurollm::{Context, ContextParams, GeneratorParams, Model};
///
/// let model = Model::load(dir)?;
/// let mut ctx = Context::new(&model, &ContextParams::default())?;
/// let params = GeneratorParams::greedy().max_tokens(30);
///
/// let mut gen = ctx.generator(&params)?;
/// gen.append_tokens(&model.tokenize("Once upon a time")?)?;
/// gen.add_stop_string(".")?;
/// let mut text = String::new();
/// for piece in &mut gen {
///     let piece = piece?;
///     text.push_str(&piece.text);
/// }
/// assert_eq!(gen.stop_reason(), Some(eurollm::StopReason::StopString));
/// assert!(!text.contains('.'));
/// # Ok(())
/// # }
/// ```
///
/// While the generator lives, the context is borrowed:
///
/// ```compile_fail,E0499
/// # fn f(ctx: &mut eurollm::Context<'_>) -> eurollm::Result<()> {
/// let mut gen = ctx.generator(&eurollm::GeneratorParams::default())?;
/// ctx.reset()?; // error[E0499]: cannot borrow `*ctx` as mutable more than once at a time
/// gen.step()?;
/// # Ok(())
/// # }
/// # fn main() {}
/// ```
pub struct Generator<'c> {
    raw: NonNull<sys::eurollm_generator>,
    model: &'c Model,
    /// The context, borrowed mutably (the handle is in the C generator).
    _ctx: PhantomData<&'c mut sys::eurollm_context>,
    callback: Option<Box<TokenFn<'c>>>,
    /// The iterator has seen the end (DONE or an error).
    finished: bool,
}

impl<'c> Generator<'c> {
    pub(crate) fn new(
        ctx: NonNull<sys::eurollm_context>,
        model: &'c Model,
        params: &GeneratorParams,
    ) -> Result<Generator<'c>> {
        let raw_params = params.to_raw();
        let mut out: *mut sys::eurollm_generator = std::ptr::null_mut();
        // SAFETY: live context handle borrowed mutably by the caller for 'c; valid params.
        check(unsafe { sys::eurollm_generator_init(ctx.as_ptr(), &raw_params, &mut out) })?;
        let raw =
            NonNull::new(out).ok_or_else(|| Error::new(ErrorKind::Generic, "eurollm_generator_init returned NULL"))?;
        Ok(Generator { raw, model, _ctx: PhantomData, callback: None, finished: false })
    }

    /// The raw handle, for calls the safe API does not wrap yet. It stays owned by `self`.
    pub fn as_ptr(&self) -> *mut sys::eurollm_generator {
        self.raw.as_ptr()
    }

    /// The model of the context.
    pub fn model(&self) -> &'c Model {
        self.model
    }

    /// Append input tokens (evaluated lazily by the next step); may be called between steps to
    /// feed more input. Fails with ContextFull if they would not fit, InvalidArgument for ids
    /// outside the vocabulary.
    pub fn append_tokens(&mut self, tokens: &[i32]) -> Result<()> {
        // SAFETY: live handle; `tokens` valid for its length (copied).
        check(unsafe { sys::eurollm_generator_append_tokens(self.raw.as_ptr(), tokens.as_ptr(), tokens.len()) })?;
        Ok(())
    }

    /// Append text, tokenized with `flags` ([`TokenizeFlags::MODEL_DEFAULT`] for a prompt that
    /// starts a sequence, [`TokenizeFlags::PARSE_SPECIAL`] to continue one without a BOS).
    pub fn append_text(&mut self, text: &str, flags: TokenizeFlags) -> Result<()> {
        let ids = self.model.tokenize_with(text, flags)?;
        self.append_tokens(&ids)
    }

    /// Stop when `token` is sampled (in addition to the model's end-of-generation ids).
    pub fn add_stop_token(&mut self, token: i32) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::eurollm_generator_add_stop_token(self.raw.as_ptr(), token) })?;
        Ok(())
    }

    /// Stop when the generated text contains `text` (may span tokens). The stop string and what
    /// follows it are not part of the streamed text.
    pub fn add_stop_string(&mut self, text: &str) -> Result<()> {
        // SAFETY: live handle; `text` valid for its length (copied).
        check(unsafe {
            sys::eurollm_generator_add_stop_string(self.raw.as_ptr(), text.as_ptr() as *const c_char, text.len())
        })?;
        Ok(())
    }

    /// Install a streaming callback, called on this thread for each generated token with the text
    /// it completes (`None` as the token for text released when generation ends). Return `false`
    /// to stop: generation then ends with [`StopReason::Callback`]. A panic in the callback stops
    /// generation and is resumed when the step returns.
    pub fn set_callback<F>(&mut self, f: F) -> Result<()>
    where
        F: FnMut(Option<i32>, &str) -> bool + 'c,
    {
        let mut boxed: Box<TokenFn<'c>> = Box::new(Box::new(f));
        let user = &mut *boxed as *mut TokenFn<'c> as *mut c_void;
        // SAFETY: live handle; `user` points into a box kept in `self.callback` until replaced,
        // cleared, or the generator is freed (Drop frees the generator before the box).
        check(unsafe { sys::eurollm_generator_set_callback(self.raw.as_ptr(), Some(token_trampoline), user) })?;
        self.callback = Some(boxed);
        Ok(())
    }

    /// Remove the streaming callback.
    pub fn clear_callback(&mut self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::eurollm_generator_set_callback(self.raw.as_ptr(), None, std::ptr::null_mut()) })?;
        self.callback = None;
        Ok(())
    }

    /// Generate one token: `Some(token)`, or `None` when generation has ended (see
    /// [`Generator::stop_reason`]). After either, [`Generator::text_delta`] holds the text made
    /// final by this step (after `None`: text released at the end, often empty).
    pub fn step(&mut self) -> Result<Option<i32>> {
        let mut tok = -1i32;
        // SAFETY: live handle, used by this thread only (&mut self).
        let status = unsafe { sys::eurollm_generator_step(self.raw.as_ptr(), &mut tok) };
        resume_callback_panic();
        check(status)?;
        Ok((status == sys::eurollm_status::EUROLLM_OK).then_some(tok))
    }

    /// The text made final by the last step, borrowed until the next step.
    pub fn text_delta(&self) -> Result<&str> {
        let bytes = self.text_delta_bytes()?;
        std::str::from_utf8(bytes).map_err(|e| Error::new(ErrorKind::Generic, format!("text delta is not UTF-8: {e}")))
    }

    fn text_delta_bytes(&self) -> Result<&[u8]> {
        let mut p: *const c_char = std::ptr::null();
        let mut len = 0usize;
        // SAFETY: live handle; valid out pointers.
        check(unsafe { sys::eurollm_generator_text_delta(self.raw.as_ptr(), &mut p, &mut len) })?;
        // SAFETY: `len` bytes owned by the generator until its next step, which the borrow of
        // `self` excludes.
        Ok(unsafe { slice(p as *const u8, len) })
    }

    /// The logits (`n_vocab` floats, before sampling) the next token will be sampled from;
    /// evaluates pending tokens first. A copy: the library's buffer belongs to the context, which
    /// other generators on it may step.
    pub fn logits(&mut self) -> Result<Vec<f32>> {
        let mut p: *const f32 = std::ptr::null();
        let mut n = 0usize;
        // SAFETY: live handle; valid out pointers.
        let status = unsafe { sys::eurollm_generator_logits(self.raw.as_ptr(), &mut p, &mut n) };
        resume_callback_panic();
        check(status)?;
        // SAFETY: `n` floats valid until the next call on this generator or its context; copied
        // before any other call.
        Ok(unsafe { slice(p, n) }.to_vec())
    }

    /// One step of several generators of one context at once (see
    /// [`Context::generators`](crate::Context::generators)): their pending tokens are evaluated in
    /// a single batch. For each generator, `Some(token)` or `None` when it has finished, as
    /// [`Generator::step`] would return; each one's [`Generator::text_delta`] is updated. An error
    /// applies to the whole call (no generator advanced): InvalidArgument for generators of
    /// different contexts or on the same sequence.
    pub fn step_batch(gens: &mut [Generator<'_>]) -> Result<Vec<Option<i32>>> {
        let handles: Vec<*mut sys::eurollm_generator> = gens.iter().map(|g| g.raw.as_ptr()).collect();
        let mut tokens = vec![-1i32; gens.len()];
        let mut statuses = vec![sys::eurollm_status::EUROLLM_OK; gens.len()];
        // SAFETY: live handles (borrowed mutably through `gens`); output arrays of gens.len().
        let status = unsafe {
            sys::eurollm_generator_step_batch(handles.as_ptr(), gens.len(), tokens.as_mut_ptr(), statuses.as_mut_ptr())
        };
        resume_callback_panic();
        check(status)?;
        let mut out = Vec::with_capacity(gens.len());
        for (tok, st) in tokens.into_iter().zip(statuses) {
            check(st)?;
            out.push((st == sys::eurollm_status::EUROLLM_OK).then_some(tok));
        }
        Ok(out)
    }

    /// Why generation ended, or `None` while it is still running.
    pub fn stop_reason(&self) -> Option<StopReason> {
        // SAFETY: live handle.
        let r = unsafe { sys::eurollm_generator_stop_reason(self.raw.as_ptr()) };
        use sys::eurollm_stop_reason as R;
        match r {
            R::EUROLLM_STOP_NONE => None,
            R::EUROLLM_STOP_EOS => Some(StopReason::Eos),
            R::EUROLLM_STOP_STRING => Some(StopReason::StopString),
            R::EUROLLM_STOP_MAX_TOKENS => Some(StopReason::MaxTokens),
            R::EUROLLM_STOP_CONTEXT_FULL => Some(StopReason::ContextFull),
            R::EUROLLM_STOP_CALLBACK => Some(StopReason::Callback),
            other => Some(StopReason::Other(other.0)),
        }
    }

    /// Tokens generated so far.
    pub fn n_generated(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::eurollm_generator_n_generated(self.raw.as_ptr()) }
    }

    /// Iterate over the generated token ids only.
    ///
    /// ```
    /// # fn main() -> eurollm::Result<()> {
    /// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
    /// let model = eurollm::Model::load(dir)?;
    /// let mut ctx = model.context(&Default::default())?;
    /// let params = eurollm::GeneratorParams::greedy().max_tokens(10).ignore_eos(true);
    /// let ids: Vec<i32> = ctx.generate("", &params)?.tokens().collect::<eurollm::Result<_>>()?;
    /// assert_eq!(ids.len(), 10);
    /// # Ok(())
    /// # }
    /// ```
    pub fn tokens(&mut self) -> Tokens<'_, 'c> {
        Tokens { gen: self }
    }

    /// Iterate over the generated text, in non-empty pieces (the text released at the end
    /// included); `collect::<Result<String>>()` gives the whole text.
    ///
    /// ```
    /// # fn main() -> eurollm::Result<()> {
    /// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
    /// let model = eurollm::Model::load(dir)?;
    /// let mut ctx = model.context(&Default::default())?;
    /// let params = eurollm::GeneratorParams::default().seed(42).max_tokens(40);
    /// let story: String = ctx.generate("Once upon a time", &params)?.text().collect::<eurollm::Result<_>>()?;
    /// assert!(!story.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn text(&mut self) -> Text<'_, 'c> {
        Text { gen: self }
    }

    fn next_piece(&mut self) -> Option<Result<Piece>> {
        if self.finished {
            return None;
        }
        let step = self.step();
        let step = step.and_then(|tok| Ok((tok, self.text_delta()?.to_owned())));
        match step {
            Ok((Some(tok), text)) => Some(Ok(Piece { token: Some(tok), text })),
            Ok((None, text)) => {
                self.finished = true;
                (!text.is_empty()).then_some(Ok(Piece { token: None, text }))
            }
            Err(e) => {
                self.finished = true;
                Some(Err(e))
            }
        }
    }
}

unsafe extern "C" fn token_trampoline(token: i32, text: *const c_char, len: usize, user: *mut c_void) -> bool {
    // SAFETY: `user` is the TokenFn box installed by set_callback, alive while installed; the
    // callback runs on the thread that called step (the generator is not Send).
    let f = unsafe { &mut *(user as *mut TokenFn<'_>) };
    // SAFETY: `len` bytes valid for the duration of the call.
    let bytes = unsafe { slice(text as *const u8, len) };
    let text = String::from_utf8_lossy(bytes);
    let token = (token >= 0).then_some(token);
    catch_callback_panic(false, || f(token, &text))
}

impl Iterator for Generator<'_> {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Result<Piece>> {
        self.next_piece()
    }
}

impl std::iter::FusedIterator for Generator<'_> {}

/// Iterator over generated token ids: [`Generator::tokens`].
pub struct Tokens<'g, 'c> {
    gen: &'g mut Generator<'c>,
}

impl Iterator for Tokens<'_, '_> {
    type Item = Result<i32>;

    fn next(&mut self) -> Option<Result<i32>> {
        loop {
            match self.gen.next_piece()? {
                Ok(Piece { token: Some(t), .. }) => return Some(Ok(t)),
                Ok(Piece { token: None, .. }) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl std::iter::FusedIterator for Tokens<'_, '_> {}

/// Iterator over the generated text in non-empty pieces: [`Generator::text`].
pub struct Text<'g, 'c> {
    gen: &'g mut Generator<'c>,
}

impl Iterator for Text<'_, '_> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        loop {
            match self.gen.next_piece()? {
                Ok(p) if p.text.is_empty() => continue,
                Ok(p) => return Some(Ok(p.text)),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl std::iter::FusedIterator for Text<'_, '_> {}

impl Drop for Generator<'_> {
    fn drop(&mut self) {
        // SAFETY: owned handle freed once. The callback box is dropped after this.
        unsafe { sys::eurollm_generator_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Generator<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Generator")
            .field("n_generated", &self.n_generated())
            .field("stop_reason", &self.stop_reason())
            .finish()
    }
}
