//! [`Trainer`]: full fine-tuning and LoRA through `capi/eurollm_experimental.h` (feature
//! `experimental`; no ABI promise: names and semantics may change in any release).
//!
//! Batches are `n_seqs` sequences of `seq_len` token ids, row-major, with labels of the same shape
//! in the Hugging Face convention: position `t` is trained to predict `labels[t + 1]`; a label of
//! [`IGNORE_LABEL`] (-100) is not trained on (set prompt tokens to it to train on answers only).

use std::os::raw::c_void;
use std::path::Path;
use std::ptr::NonNull;

use eurollm_sys as sys;

use crate::error::{check, cstr_lossy, invalid, Error, ErrorKind, Result};
use crate::ffi::{c_path, catch_callback_panic, fill_buffer, resume_callback_panic};
use crate::context::Precision;
use crate::model::{Model, ModelParams};

/// The label of a position that is not trained on (Hugging Face's -100).
pub const IGNORE_LABEL: i32 = -100;

/// What is trained (`eurollm_train_mode`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrainMode {
    /// Every weight (f32 master copies of the model's weights).
    Full,
    /// LoRA adapters over the frozen base.
    Lora,
}

/// Learning-rate schedule after the linear warmup (`eurollm_lr_schedule`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LrSchedule {
    /// Cosine decay to `min_lr_ratio * lr`.
    Cosine,
    /// Linear decay to `min_lr_ratio * lr`.
    Linear,
    /// Constant.
    Constant,
}

/// LoRA target projections (`EUROLLM_LORA_*`), combined with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LoraTargets(u32);

impl LoraTargets {
    /// Query projection.
    pub const Q: LoraTargets = LoraTargets(sys::EUROLLM_LORA_Q);
    /// Key projection.
    pub const K: LoraTargets = LoraTargets(sys::EUROLLM_LORA_K);
    /// Value projection.
    pub const V: LoraTargets = LoraTargets(sys::EUROLLM_LORA_V);
    /// Attention output projection.
    pub const O: LoraTargets = LoraTargets(sys::EUROLLM_LORA_O);
    /// MLP gate projection.
    pub const GATE: LoraTargets = LoraTargets(sys::EUROLLM_LORA_GATE);
    /// MLP up projection.
    pub const UP: LoraTargets = LoraTargets(sys::EUROLLM_LORA_UP);
    /// MLP down projection.
    pub const DOWN: LoraTargets = LoraTargets(sys::EUROLLM_LORA_DOWN);
    /// All of them.
    pub const ALL: LoraTargets = LoraTargets(sys::EUROLLM_LORA_ALL);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Targets from raw bits, unknown bits kept (the library rejects them).
    pub const fn from_bits_retain(bits: u32) -> LoraTargets {
        LoraTargets(bits)
    }
}

impl std::ops::BitOr for LoraTargets {
    type Output = LoraTargets;
    fn bitor(self, rhs: LoraTargets) -> LoraTargets {
        LoraTargets(self.0 | rhs.0)
    }
}

/// Training settings (`eurollm_trainer_params`). `Default` takes the library's defaults (LoRA rank
/// 8, alpha 16 on Q and V; AdamW lr 1e-4; cosine schedule; gradient clipping at 1.0).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct TrainerParams {
    /// Full fine-tuning or LoRA (default LoRA).
    pub mode: TrainMode,
    /// LoRA rank (default 8).
    pub lora_rank: i32,
    /// LoRA alpha; the update is scaled by alpha / rank (default 16).
    pub lora_alpha: f32,
    /// Dropout on the adapter's input (default 0).
    pub lora_dropout: f32,
    /// Projections that get adapters (default Q | V).
    pub lora_targets: LoraTargets,
    /// Peak learning rate (default 1e-4).
    pub lr: f32,
    /// AdamW beta1 (default 0.9).
    pub beta1: f32,
    /// AdamW beta2 (default 0.999).
    pub beta2: f32,
    /// AdamW epsilon (default 1e-8).
    pub eps: f32,
    /// Decoupled weight decay (default 0; norms and biases never decay).
    pub weight_decay: f32,
    /// Schedule after warmup (default cosine).
    pub schedule: LrSchedule,
    /// Linear warmup steps (default 0).
    pub warmup_steps: i32,
    /// Schedule length; 0 = constant after warmup (default).
    pub total_steps: i32,
    /// Floor of the decay as a fraction of lr (default 0).
    pub min_lr_ratio: f32,
    /// Sequences per forward/backward (gradient accumulation); 0 = all (default).
    pub micro_batch: i32,
    /// Global-norm gradient clipping; 0 = off (default 1.0).
    pub max_grad_norm: f32,
    /// Seed of LoRA initialisation and dropout (default 0).
    pub seed: u64,
    /// CPU threads; 0 = one per core (default).
    pub n_threads: i32,
    /// [`Precision::Exact`] (float32 gradients, default) or [`Precision::Bf16`] (bf16 products,
    /// float32 master weights and moments). Not recorded in checkpoints: set it again on resume.
    pub precision: Precision,
}

fn raw_trainer_params() -> sys::eurollm_trainer_params {
    let mut raw = sys::eurollm_trainer_params::default();
    // SAFETY: a valid, writable params struct of the version we pass.
    let s = unsafe { sys::eurollm_trainer_params_init(&mut raw, sys::EUROLLM_TRAINER_PARAMS_VERSION) };
    debug_assert_eq!(s, sys::eurollm_status::EUROLLM_OK);
    raw
}

impl Default for TrainerParams {
    fn default() -> Self {
        TrainerParams::from_raw(&raw_trainer_params())
    }
}

macro_rules! setters {
    ($($name:ident: $ty:ty),* $(,)?) => {
        $(
            #[doc = concat!("Set [`TrainerParams::", stringify!($name), "`].")]
            pub fn $name(mut self, value: $ty) -> Self {
                self.$name = value;
                self
            }
        )*
    };
}

impl TrainerParams {
    setters! {
        mode: TrainMode, lora_rank: i32, lora_alpha: f32, lora_dropout: f32, lora_targets: LoraTargets,
        lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, schedule: LrSchedule,
        warmup_steps: i32, total_steps: i32, min_lr_ratio: f32, micro_batch: i32, max_grad_norm: f32,
        seed: u64, n_threads: i32, precision: Precision,
    }

    /// The mode, LoRA shape, hyper-parameters and precision recorded in the latest valid checkpoint under
    /// `dir/checkpoints` (the other fields keep their defaults); [`ErrorKind::Io`] when there is none.
    pub fn from_checkpoint(dir: impl AsRef<Path>) -> Result<TrainerParams> {
        let dir = c_path(dir.as_ref())?;
        let mut r = raw_trainer_params();
        // SAFETY: valid C string; `r` is an initialised params struct of the current version.
        check(unsafe { sys::eurollm_trainer_params_from_checkpoint(dir.as_ptr(), &mut r) })?;
        Ok(TrainerParams::from_raw(&r))
    }

    fn from_raw(r: &sys::eurollm_trainer_params) -> TrainerParams {
        TrainerParams {
            mode: if r.mode == sys::eurollm_train_mode::EUROLLM_TRAIN_FULL { TrainMode::Full } else { TrainMode::Lora },
            lora_rank: r.lora_rank,
            lora_alpha: r.lora_alpha,
            lora_dropout: r.lora_dropout,
            lora_targets: LoraTargets(r.lora_targets),
            lr: r.lr,
            beta1: r.beta1,
            beta2: r.beta2,
            eps: r.eps,
            weight_decay: r.weight_decay,
            schedule: match r.schedule {
                sys::eurollm_lr_schedule::EUROLLM_SCHEDULE_LINEAR => LrSchedule::Linear,
                sys::eurollm_lr_schedule::EUROLLM_SCHEDULE_CONSTANT => LrSchedule::Constant,
                _ => LrSchedule::Cosine,
            },
            warmup_steps: r.warmup_steps,
            total_steps: r.total_steps,
            min_lr_ratio: r.min_lr_ratio,
            micro_batch: r.micro_batch,
            max_grad_norm: r.max_grad_norm,
            seed: r.seed,
            n_threads: r.n_threads,
            precision: Precision::from_raw(r.precision),
        }
    }

    fn to_raw(&self) -> sys::eurollm_trainer_params {
        let mut r = raw_trainer_params();
        r.mode = match self.mode {
            TrainMode::Full => sys::eurollm_train_mode::EUROLLM_TRAIN_FULL,
            TrainMode::Lora => sys::eurollm_train_mode::EUROLLM_TRAIN_LORA,
        };
        r.lora_rank = self.lora_rank;
        r.lora_alpha = self.lora_alpha;
        r.lora_dropout = self.lora_dropout;
        r.lora_targets = self.lora_targets.bits();
        r.lr = self.lr;
        r.beta1 = self.beta1;
        r.beta2 = self.beta2;
        r.eps = self.eps;
        r.weight_decay = self.weight_decay;
        r.schedule = match self.schedule {
            LrSchedule::Cosine => sys::eurollm_lr_schedule::EUROLLM_SCHEDULE_COSINE,
            LrSchedule::Linear => sys::eurollm_lr_schedule::EUROLLM_SCHEDULE_LINEAR,
            LrSchedule::Constant => sys::eurollm_lr_schedule::EUROLLM_SCHEDULE_CONSTANT,
        };
        r.warmup_steps = self.warmup_steps;
        r.total_steps = self.total_steps;
        r.min_lr_ratio = self.min_lr_ratio;
        r.micro_batch = self.micro_batch;
        r.max_grad_norm = self.max_grad_norm;
        r.seed = self.seed;
        r.n_threads = self.n_threads;
        r.precision = self.precision.to_raw();
        r
    }
}

/// The outcome of one optimizer step (`eurollm_train_result`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainResult {
    /// Mean loss of the step's labelled tokens.
    pub loss: f32,
    /// Global gradient norm before clipping.
    pub grad_norm: f32,
    /// Learning rate used by this step.
    pub lr: f32,
    /// Tokens processed (n_seqs * seq_len).
    pub tokens: i64,
    /// Tokens that carried a label.
    pub loss_tokens: i64,
    /// Optimizer steps taken so far, this one included.
    pub step: i64,
    /// The progress callback asked to stop after this step (the step stands).
    pub stop_requested: bool,
}

impl TrainResult {
    fn from_raw(r: &sys::eurollm_train_result, stop_requested: bool) -> TrainResult {
        TrainResult {
            loss: r.loss,
            grad_norm: r.grad_norm,
            lr: r.lr,
            tokens: r.tokens,
            loss_tokens: r.loss_tokens,
            step: r.step,
            stop_requested,
        }
    }
}

/// Which array of a trainable tensor (`eurollm_tensor_part`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TensorPart {
    /// The values.
    Value,
    /// The gradient of the last step or [`Trainer::compute_gradients`].
    Grad,
    /// AdamW first moment.
    ExpAvg,
    /// AdamW second moment.
    ExpAvgSq,
}

impl TensorPart {
    fn to_raw(self) -> sys::eurollm_tensor_part {
        match self {
            TensorPart::Value => sys::eurollm_tensor_part::EUROLLM_TENSOR_VALUE,
            TensorPart::Grad => sys::eurollm_tensor_part::EUROLLM_TENSOR_GRAD,
            TensorPart::ExpAvg => sys::eurollm_tensor_part::EUROLLM_TENSOR_EXP_AVG,
            TensorPart::ExpAvgSq => sys::eurollm_tensor_part::EUROLLM_TENSOR_EXP_AVG_SQ,
        }
    }
}

type ProgressFn<'m> = Box<dyn FnMut(&TrainResult) -> bool + Send + 'm>;

/// A trainer on a model it borrows (`eurollm_trainer`): the model is never written (full
/// fine-tuning trains f32 copies), so it keeps serving contexts meanwhile. One thread at a time:
/// `Send`, not `Sync`. Dropping it calls `eurollm_trainer_free`.
///
/// ```
/// # fn main() -> eurollm::Result<()> {
/// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
/// use eurollm::trainer::{Trainer, TrainerParams, IGNORE_LABEL};
/// let model = eurollm::Model::load(dir)?;
/// let mut trainer = Trainer::new(&model, &TrainerParams::default().lr(1e-2).lora_rank(4))?;
/// let tokens = model.tokenize("Once upon a time, there was a cat.")?;
/// let mut labels = tokens.clone();
/// labels[..4].fill(IGNORE_LABEL); // train on the end only
/// let first = trainer.step(&tokens, &labels, tokens.len())?;
/// for _ in 0..5 {
///     trainer.step(&tokens, &labels, tokens.len())?;
/// }
/// let (loss, _) = trainer.eval(&tokens, &labels, tokens.len())?;
/// assert!(loss < first.loss);
/// # Ok(())
/// # }
/// ```
pub struct Trainer<'m> {
    raw: NonNull<sys::eurollm_trainer>,
    model: &'m Model,
    progress: Option<Box<ProgressFn<'m>>>,
}

// SAFETY: the experimental header: "a trainer is used by one thread at a time; the model it reads
// stays immutable". It may move between threads (every mutating method takes &mut self; it is not
// Sync); the progress callback it owns must be Send.
unsafe impl Send for Trainer<'_> {}

/// `(n_seqs, seq_len)` of a batch, checked.
fn shape(tokens: &[i32], labels: Option<&[i32]>, seq_len: usize) -> Result<(usize, usize)> {
    if seq_len == 0 || tokens.is_empty() || tokens.len() % seq_len != 0 {
        return Err(invalid(format!("{} tokens do not form sequences of length {seq_len}", tokens.len())));
    }
    if let Some(l) = labels {
        if l.len() != tokens.len() {
            return Err(invalid(format!("{} labels for {} tokens", l.len(), tokens.len())));
        }
    }
    Ok((tokens.len() / seq_len, seq_len))
}

impl<'m> Trainer<'m> {
    /// Create a trainer on `model`.
    pub fn new(model: &'m Model, params: &TrainerParams) -> Result<Trainer<'m>> {
        let raw_params = params.to_raw();
        let mut out: *mut sys::eurollm_trainer = std::ptr::null_mut();
        // SAFETY: live model handle, valid params; `out` receives an owned handle.
        check(unsafe { sys::eurollm_trainer_create(model.as_ptr(), &raw_params, &mut out) })?;
        let raw =
            NonNull::new(out).ok_or_else(|| Error::new(ErrorKind::Generic, "eurollm_trainer_create returned NULL"))?;
        Ok(Trainer { raw, model, progress: None })
    }

    /// The model being trained.
    pub fn model(&self) -> &'m Model {
        self.model
    }

    /// The raw handle, for calls the safe API does not wrap yet. It stays owned by `self`.
    pub fn as_ptr(&self) -> *mut sys::eurollm_trainer {
        self.raw.as_ptr()
    }

    /// Call `f` after each step; returning `false` asks to stop ([`TrainResult::stop_requested`]).
    pub fn set_progress_callback<F>(&mut self, f: F) -> Result<()>
    where
        F: FnMut(&TrainResult) -> bool + Send + 'm,
    {
        let mut boxed: Box<ProgressFn<'m>> = Box::new(Box::new(f));
        let user = &mut *boxed as *mut ProgressFn<'m> as *mut c_void;
        // SAFETY: live handle; the box stays in self.progress until replaced, cleared or freed
        // (Drop frees the trainer first).
        check(unsafe { sys::eurollm_trainer_set_progress(self.raw.as_ptr(), Some(progress_trampoline), user) })?;
        self.progress = Some(boxed);
        Ok(())
    }

    /// Remove the progress callback.
    pub fn clear_progress_callback(&mut self) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::eurollm_trainer_set_progress(self.raw.as_ptr(), None, std::ptr::null_mut()) })?;
        self.progress = None;
        Ok(())
    }

    /// One optimizer step over a batch of `tokens.len() / seq_len` sequences. A loss or gradient
    /// that is NaN/Inf is an [`ErrorKind::Generic`] error and the step is skipped (weights, moments
    /// and step count unchanged).
    pub fn step(&mut self, tokens: &[i32], labels: &[i32], seq_len: usize) -> Result<TrainResult> {
        let (n_seqs, seq_len) = shape(tokens, Some(labels), seq_len)?;
        let mut r = sys::eurollm_train_result::default();
        // SAFETY: live handle; both arrays hold n_seqs * seq_len ids.
        let status = unsafe {
            sys::eurollm_trainer_step(self.raw.as_ptr(), tokens.as_ptr(), labels.as_ptr(), n_seqs, seq_len, &mut r)
        };
        resume_callback_panic();
        if status == sys::eurollm_status::EUROLLM_ERR_ABORTED {
            return Ok(TrainResult::from_raw(&r, true));
        }
        check(status)?;
        Ok(TrainResult::from_raw(&r, false))
    }

    /// Mean loss of a batch with the current weights, and the number of labelled tokens (no
    /// dropout, no state change).
    pub fn eval(&mut self, tokens: &[i32], labels: &[i32], seq_len: usize) -> Result<(f32, i64)> {
        let (n_seqs, seq_len) = shape(tokens, Some(labels), seq_len)?;
        let (mut loss, mut n) = (0f32, 0i64);
        // SAFETY: live handle; both arrays hold n_seqs * seq_len ids.
        check(unsafe {
            sys::eurollm_trainer_eval(
                self.raw.as_ptr(),
                tokens.as_ptr(),
                labels.as_ptr(),
                n_seqs,
                seq_len,
                &mut loss,
                &mut n,
            )
        })?;
        Ok((loss, n))
    }

    /// Forward and backward only: keeps the gradients of the batch's mean loss for
    /// [`Trainer::tensor`] with [`TensorPart::Grad`]; no update. Returns the loss.
    pub fn compute_gradients(&mut self, tokens: &[i32], labels: &[i32], seq_len: usize) -> Result<f32> {
        let (n_seqs, seq_len) = shape(tokens, Some(labels), seq_len)?;
        let mut loss = 0f32;
        // SAFETY: live handle; both arrays hold n_seqs * seq_len ids.
        check(unsafe {
            sys::eurollm_trainer_compute_gradients(
                self.raw.as_ptr(),
                tokens.as_ptr(),
                labels.as_ptr(),
                n_seqs,
                seq_len,
                &mut loss,
            )
        })?;
        Ok(loss)
    }

    /// Logits of every position of one sequence with the trained weights: `tokens.len()` rows of
    /// [`Model::n_vocab`] floats.
    pub fn logits(&mut self, tokens: &[i32]) -> Result<Vec<f32>> {
        let n = tokens.len().checked_mul(self.model.n_vocab()).ok_or_else(|| invalid("too many tokens"))?;
        let mut out = vec![0f32; n];
        let ptr = if out.is_empty() { NonNull::<f32>::dangling().as_ptr() } else { out.as_mut_ptr() };
        // SAFETY: live handle; `out` holds tokens.len() * n_vocab floats.
        check(unsafe { sys::eurollm_trainer_logits(self.raw.as_ptr(), tokens.as_ptr(), tokens.len(), ptr, n) })?;
        Ok(out)
    }

    /// Number of trainable tensors and their total element count.
    pub fn n_tensors(&self) -> Result<(usize, i64)> {
        let (mut n, mut elems) = (0usize, 0i64);
        // SAFETY: live handle; valid out pointers.
        check(unsafe { sys::eurollm_trainer_n_tensors(self.raw.as_ptr(), &mut n, &mut elems) })?;
        Ok((n, elems))
    }

    /// Names of the trainable tensors: Hugging Face names (full) or PEFT's saved names (LoRA).
    pub fn tensor_names(&self) -> Result<Vec<String>> {
        let (n, _) = self.n_tensors()?;
        // SAFETY: live handle; i < n; the name is borrowed from the trainer and copied at once.
        Ok((0..n).map(|i| unsafe { cstr_lossy(sys::eurollm_trainer_tensor_name(self.raw.as_ptr(), i)) }).collect())
    }

    /// One array of a trainable tensor, as f32.
    pub fn tensor(&self, name: &str, part: TensorPart) -> Result<Vec<f32>> {
        let name = crate::ffi::c_string(name, "the tensor name")?;
        // SAFETY: live handle; valid C string; fill_buffer passes `cap` floats (or NULL with 0).
        fill_buffer(0, 0, |buf, cap, n| unsafe {
            sys::eurollm_trainer_get_tensor(self.raw.as_ptr(), name.as_ptr(), part.to_raw(), buf, cap, n)
        })
    }

    /// Steps taken so far (after a resume: the checkpoint's).
    pub fn step_count(&self) -> i64 {
        // SAFETY: live handle.
        unsafe { sys::eurollm_trainer_step_count(self.raw.as_ptr()) }
    }

    /// Store the data loader's position `(epoch, offset, seed)` in the next checkpoints.
    pub fn set_data_position(&mut self, epoch: u64, offset: u64, seed: u64) -> Result<()> {
        // SAFETY: live handle.
        check(unsafe { sys::eurollm_trainer_set_data_position(self.raw.as_ptr(), epoch, offset, seed) })?;
        Ok(())
    }

    /// The data loader's position `(epoch, offset, seed)` (restored by a checkpoint).
    pub fn data_position(&self) -> Result<(u64, u64, u64)> {
        let (mut e, mut o, mut s) = (0u64, 0u64, 0u64);
        // SAFETY: live handle; valid out pointers.
        check(unsafe { sys::eurollm_trainer_get_data_position(self.raw.as_ptr(), &mut e, &mut o, &mut s) })?;
        Ok((e, o, s))
    }

    /// Write a checkpoint under `dir/checkpoints/step-N`, atomically; the last 2 are kept.
    pub fn save_checkpoint(&mut self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = c_path(dir.as_ref())?;
        // SAFETY: live handle; valid C string.
        check(unsafe { sys::eurollm_trainer_save_checkpoint(self.raw.as_ptr(), dir.as_ptr()) })?;
        Ok(())
    }

    /// Resume from the latest valid checkpoint under `dir/checkpoints` ([`ErrorKind::Io`] when
    /// there is none).
    pub fn load_checkpoint(&mut self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = c_path(dir.as_ref())?;
        // SAFETY: live handle; valid C string.
        check(unsafe { sys::eurollm_trainer_load_checkpoint(self.raw.as_ptr(), dir.as_ptr()) })?;
        Ok(())
    }

    /// Write the LoRA adapters as a PEFT adapter directory.
    pub fn export_peft(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = c_path(dir.as_ref())?;
        // SAFETY: live handle; valid C string.
        check(unsafe { sys::eurollm_trainer_export_peft(self.raw.as_ptr(), dir.as_ptr()) })?;
        Ok(())
    }

    /// Set the LoRA adapters from a PEFT adapter directory (rank, alpha and targets must match).
    pub fn load_peft(&mut self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = c_path(dir.as_ref())?;
        // SAFETY: live handle; valid C string.
        check(unsafe { sys::eurollm_trainer_load_peft(self.raw.as_ptr(), dir.as_ptr()) })?;
        Ok(())
    }

    /// Write a model directory loadable by [`Model::load`] and transformers: the trained weights
    /// (full) or the base with the adapters merged (LoRA).
    pub fn save_model(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = c_path(dir.as_ref())?;
        // SAFETY: live handle; valid C string.
        check(unsafe { sys::eurollm_trainer_save_model(self.raw.as_ptr(), dir.as_ptr()) })?;
        Ok(())
    }
}

unsafe extern "C" fn progress_trampoline(result: *const sys::eurollm_train_result, user: *mut c_void) -> bool {
    // SAFETY: `user` is the ProgressFn box installed by set_progress_callback, alive while
    // installed; the trainer is used by one thread at a time.
    let f = unsafe { &mut *(user as *mut ProgressFn<'_>) };
    if result.is_null() {
        return true;
    }
    // SAFETY: valid for the duration of the call.
    let r = TrainResult::from_raw(unsafe { &*result }, false);
    catch_callback_panic(false, || f(&r))
}

impl Drop for Trainer<'_> {
    fn drop(&mut self) {
        // SAFETY: owned handle freed once; the progress box is dropped after this.
        unsafe { sys::eurollm_trainer_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Trainer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("step_count", &self.step_count()).finish()
    }
}

/// A tokenized training set packed into sequences of `seq_len` (`eurollm_dataset`), from a JSONL
/// file whose lines are objects with `"text"` (BOS + text + EOS, every token trained),
/// `"messages"` (a conversation in the model's chat template, ChatML if it has none; only the
/// assistant turns are trained) or `"tokens"` (and optional `"labels"`). Documents are
/// concatenated and cut into sequences. Independent of the model once loaded.
///
/// ```
/// # fn main() -> eurollm::Result<()> {
/// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
/// use eurollm::trainer::{Dataset, Trainer, TrainerParams};
/// let model = eurollm::Model::load(dir)?;
/// let path = std::env::temp_dir().join(format!("eurollm-doc-{}.jsonl", std::process::id()));
/// std::fs::write(&path, "{\"text\": \"Once upon a time, there was a cat.\"}\n{\"text\": \"Lily had a red ball.\"}\n").unwrap();
/// let data = Dataset::load(&model, &path, 8)?;
/// let mut trainer = Trainer::new(&model, &TrainerParams::default())?;
/// for epoch in 0..2 {
///     let (tokens, labels) = data.get(0, data.n_sequences(), Some((42, epoch)))?;
///     trainer.step(&tokens, &labels, data.seq_len())?;
/// }
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
pub struct Dataset {
    raw: NonNull<sys::eurollm_dataset>,
    seq_len: usize,
}

// SAFETY: the handle owns plain token arrays, independent of the model; it may move between
// threads (it is not Sync: the header states no concurrent use).
unsafe impl Send for Dataset {}

impl Dataset {
    /// Tokenize and pack a JSONL file with `model`'s tokenizer into sequences of `seq_len`.
    pub fn load(model: &Model, jsonl: impl AsRef<Path>, seq_len: usize) -> Result<Dataset> {
        let path = c_path(jsonl.as_ref())?;
        let mut out: *mut sys::eurollm_dataset = std::ptr::null_mut();
        // SAFETY: live model handle; valid C string; `out` receives an owned handle.
        check(unsafe { sys::eurollm_dataset_load(model.as_ptr(), path.as_ptr(), seq_len, &mut out) })?;
        Dataset::from_raw(out, seq_len)
    }

    fn from_raw(out: *mut sys::eurollm_dataset, seq_len: usize) -> Result<Dataset> {
        let raw = NonNull::new(out).ok_or_else(|| Error::new(ErrorKind::Generic, "the dataset call returned NULL"))?;
        Ok(Dataset { raw, seq_len })
    }

    /// The raw handle. It stays owned by `self`.
    pub fn as_ptr(&self) -> *mut sys::eurollm_dataset {
        self.raw.as_ptr()
    }

    /// Number of sequences.
    pub fn n_sequences(&self) -> usize {
        // SAFETY: live handle.
        unsafe { sys::eurollm_dataset_n_sequences(self.raw.as_ptr()) }
    }

    /// Length of each sequence.
    pub fn seq_len(&self) -> usize {
        self.seq_len
    }

    /// Move the last `n` sequences into a new dataset (a held-out split).
    pub fn split(&mut self, n: usize) -> Result<Dataset> {
        let mut out: *mut sys::eurollm_dataset = std::ptr::null_mut();
        // SAFETY: live handle; `out` receives an owned handle.
        check(unsafe { sys::eurollm_dataset_split(self.raw.as_ptr(), n, &mut out) })?;
        Dataset::from_raw(out, self.seq_len)
    }

    /// `n_seqs` sequences from position `first`, as `(tokens, labels)` of `n_seqs * seq_len` ids
    /// each. `shuffle`: `Some((seed, epoch))` reads them in that epoch's permutation; `None` in
    /// file order.
    pub fn get(&self, first: usize, n_seqs: usize, shuffle: Option<(u64, u64)>) -> Result<(Vec<i32>, Vec<i32>)> {
        let n = n_seqs.checked_mul(self.seq_len).ok_or_else(|| invalid("too many sequences"))?;
        let (mut tokens, mut labels) = (vec![0i32; n.max(1)], vec![0i32; n.max(1)]);
        let (seed, epoch) = shuffle.unwrap_or((0, 0));
        // SAFETY: live handle; both buffers hold at least n_seqs * seq_len ids (never NULL).
        check(unsafe {
            sys::eurollm_dataset_get(
                self.raw.as_ptr(),
                seed,
                epoch,
                shuffle.is_some(),
                first,
                n_seqs,
                tokens.as_mut_ptr(),
                labels.as_mut_ptr(),
            )
        })?;
        tokens.truncate(n);
        labels.truncate(n);
        Ok((tokens, labels))
    }
}

impl Drop for Dataset {
    fn drop(&mut self) {
        // SAFETY: owned handle freed once.
        unsafe { sys::eurollm_dataset_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Dataset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataset").field("n_sequences", &self.n_sequences()).field("seq_len", &self.seq_len).finish()
    }
}

/// Merge a PEFT LoRA adapter into a base model directory at `scale` (1 = as trained) and write
/// the result as a new model directory.
pub fn adapter_merge(
    base_dir: impl AsRef<Path>,
    adapter_dir: impl AsRef<Path>,
    scale: f32,
    out_dir: impl AsRef<Path>,
) -> Result<()> {
    let (b, a, o) = (c_path(base_dir.as_ref())?, c_path(adapter_dir.as_ref())?, c_path(out_dir.as_ref())?);
    // SAFETY: valid C strings.
    check(unsafe { sys::eurollm_adapter_merge(b.as_ptr(), a.as_ptr(), scale, o.as_ptr()) })?;
    Ok(())
}

impl Model {
    /// Load a model with a PEFT adapter applied at `scale` (merged in memory; 0 gives the base).
    /// The result is an ordinary model. Feature `experimental`.
    pub fn load_with_adapter(
        path: impl AsRef<Path>,
        adapter_dir: impl AsRef<Path>,
        scale: f32,
        params: &ModelParams,
    ) -> Result<Model> {
        let (p, a) = (c_path(path.as_ref())?, c_path(adapter_dir.as_ref())?);
        let raw_params = params.to_raw();
        let mut out: *mut sys::eurollm_model = std::ptr::null_mut();
        // SAFETY: valid C strings and params; `out` receives an owned handle.
        check(unsafe { sys::eurollm_model_load_with_adapter(p.as_ptr(), a.as_ptr(), scale, &raw_params, &mut out) })?;
        Model::from_raw(out)
    }
}
