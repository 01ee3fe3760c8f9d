//! [`Model`]: weights, hyper-parameters and tokenizer, loaded once and shared.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::path::Path;
use std::ptr::NonNull;
use std::sync::OnceLock;

use eurollm_sys as sys;

use crate::context::{Context, ContextParams};
use crate::error::{check, cstr_lossy, Error, ErrorKind, Result};
use crate::ffi::{c_path, fill_buffer};

/// A compute device kind (`eurollm_device_kind`).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The CPU for now: a GPU only when asked for (the trainer still runs on the CPU).
    #[default]
    Auto,
    /// The CPU (always available).
    Cpu,
    /// An NVIDIA GPU (when the library was built with CUDA).
    Cuda,
    /// An AMD GPU (when the library was built with HIP).
    Hip,
}

impl Device {
    pub(crate) fn to_raw(self) -> sys::eurollm_device_kind {
        match self {
            Device::Auto => sys::eurollm_device_kind::EUROLLM_DEVICE_AUTO,
            Device::Cpu => sys::eurollm_device_kind::EUROLLM_DEVICE_CPU,
            Device::Cuda => sys::eurollm_device_kind::EUROLLM_DEVICE_CUDA,
            Device::Hip => sys::eurollm_device_kind::EUROLLM_DEVICE_HIP,
        }
    }

    fn from_raw(kind: sys::eurollm_device_kind) -> Device {
        match kind {
            sys::eurollm_device_kind::EUROLLM_DEVICE_CPU => Device::Cpu,
            sys::eurollm_device_kind::EUROLLM_DEVICE_CUDA => Device::Cuda,
            sys::eurollm_device_kind::EUROLLM_DEVICE_HIP => Device::Hip,
            _ => Device::Auto,
        }
    }
}

/// How the 2-D weights are stored (`eurollm_weight_type`): converted at load
/// ([`ModelParams::weight_type`]) or written by [`Model::save_gguf`]. Norms always stay as they are.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WeightType {
    /// Keep each tensor's stored type.
    #[default]
    Auto,
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
    /// bfloat16.
    Bf16,
    /// llama.cpp Q8_0: blocks of 32 int8 values and an f16 scale.
    Q8_0,
    /// llama.cpp Q4_0: blocks of 32 4-bit values and an f16 scale (the output head stays Q8_0).
    Q4_0,
    /// llama.cpp Q4_K_M: super-blocks of 256 4-bit values with 6-bit scales and mins, with the output
    /// head and a third of the attn_v / ffn_down weights in Q6_K.
    Q4K,
    /// llama.cpp Q6_K: super-blocks of 256 6-bit values with int8 scales.
    Q6K,
}

impl WeightType {
    pub(crate) fn to_raw(self) -> sys::eurollm_weight_type {
        match self {
            WeightType::Auto => sys::eurollm_weight_type::EUROLLM_WEIGHT_AUTO,
            WeightType::F32 => sys::eurollm_weight_type::EUROLLM_WEIGHT_F32,
            WeightType::F16 => sys::eurollm_weight_type::EUROLLM_WEIGHT_F16,
            WeightType::Bf16 => sys::eurollm_weight_type::EUROLLM_WEIGHT_BF16,
            WeightType::Q8_0 => sys::eurollm_weight_type::EUROLLM_WEIGHT_Q8_0,
            WeightType::Q4_0 => sys::eurollm_weight_type::EUROLLM_WEIGHT_Q4_0,
            WeightType::Q4K => sys::eurollm_weight_type::EUROLLM_WEIGHT_Q4_K,
            WeightType::Q6K => sys::eurollm_weight_type::EUROLLM_WEIGHT_Q6_K,
        }
    }
}

/// Number of usable devices of a kind (CPU: 1; a GPU kind this build lacks: 0).
///
/// ```
/// assert_eq!(eurollm::device_count(eurollm::Device::Cpu), 1);
/// ```
pub fn device_count(kind: Device) -> usize {
    // SAFETY: plain query; any kind is accepted.
    let n = unsafe { sys::eurollm_device_count(kind.to_raw()) };
    n.max(0) as usize
}

/// A device's name: "cpu", or e.g. "NVIDIA H100 80GB HBM3 (sm_90)" (`eurollm_device_name`).
/// `InvalidArgument` for a device that does not exist.
///
/// ```
/// assert_eq!(eurollm::device_name(eurollm::Device::Cpu, 0).unwrap(), "cpu");
/// ```
pub fn device_name(kind: Device, index: i32) -> Result<String> {
    // SAFETY: the name buffer is sized by fill_buffer.
    let bytes = fill_buffer(256, 1, |buf: *mut std::os::raw::c_char, cap, n| unsafe {
        sys::eurollm_device_name(kind.to_raw(), index, buf, cap, n)
    })?;
    Ok(String::from_utf8_lossy(&bytes.into_iter().map(|c| c as u8).collect::<Vec<u8>>()).into_owned())
}

/// A GPU's memory in bytes as `(total, free)`; the CPU answers `(0, 0)` (`eurollm_device_memory`).
pub fn device_memory(kind: Device, index: i32) -> Result<(u64, u64)> {
    let (mut total, mut free) = (0u64, 0u64);
    // SAFETY: both outputs are valid for writing.
    check(unsafe { sys::eurollm_device_memory(kind.to_raw(), index, &mut total, &mut free) })?;
    Ok((total, free))
}

/// How to load a model (`eurollm_model_params`). `Default` takes the library's defaults.
///
/// ```
/// let params = eurollm::ModelParams::default().device(eurollm::Device::Cpu).use_mmap(true);
/// assert_eq!(params.device, eurollm::Device::Cpu);
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelParams {
    /// Where to run (default [`Device::Auto`]).
    pub device: Device,
    /// Which device of that kind (default 0).
    pub device_index: i32,
    /// Layers placed on the GPU; -1 = all (default).
    pub n_gpu_layers: i32,
    /// Map the weight files instead of reading them (default true).
    pub use_mmap: bool,
    /// Convert the 2-D weights to this type at load (default [`WeightType::Auto`]: as stored).
    pub weight_type: WeightType,
}

impl Default for ModelParams {
    fn default() -> Self {
        let raw = raw_model_params();
        ModelParams {
            device: Device::from_raw(raw.device),
            device_index: raw.device_index,
            n_gpu_layers: raw.n_gpu_layers,
            use_mmap: raw.use_mmap,
            weight_type: WeightType::Auto,
        }
    }
}

fn raw_model_params() -> sys::eurollm_model_params {
    let mut raw = sys::eurollm_model_params::default();
    // SAFETY: `raw` is a valid, writable params struct of the version we pass.
    let s = unsafe { sys::eurollm_model_params_init(&mut raw, sys::EUROLLM_MODEL_PARAMS_VERSION) };
    debug_assert_eq!(s, sys::eurollm_status::EUROLLM_OK);
    raw
}

impl ModelParams {
    /// Set [`ModelParams::device`].
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }
    /// Set [`ModelParams::device_index`].
    pub fn device_index(mut self, index: i32) -> Self {
        self.device_index = index;
        self
    }
    /// Set [`ModelParams::n_gpu_layers`].
    pub fn n_gpu_layers(mut self, n: i32) -> Self {
        self.n_gpu_layers = n;
        self
    }
    /// Set [`ModelParams::use_mmap`].
    pub fn use_mmap(mut self, on: bool) -> Self {
        self.use_mmap = on;
        self
    }
    /// Set [`ModelParams::weight_type`].
    pub fn weight_type(mut self, t: WeightType) -> Self {
        self.weight_type = t;
        self
    }

    pub(crate) fn to_raw(&self) -> sys::eurollm_model_params {
        let mut raw = raw_model_params();
        raw.device = self.device.to_raw();
        raw.device_index = self.device_index;
        raw.n_gpu_layers = self.n_gpu_layers;
        raw.use_mmap = self.use_mmap;
        raw.weight_type = self.weight_type.to_raw();
        raw
    }
}

/// Integer properties of a model (`eurollm_model_info`), read with [`Model::info`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelInfo {
    /// Vocabulary size.
    NVocab,
    /// Hidden size (embedding dimension).
    NEmbd,
    /// Number of layers.
    NLayer,
    /// Attention heads.
    NHead,
    /// Key/value heads.
    NHeadKv,
    /// Dimension of one head.
    HeadDim,
    /// MLP intermediate size.
    NFf,
    /// `max_position_embeddings`.
    NCtxTrain,
    /// BOS id; -1 if none.
    BosId,
    /// The first end-of-sequence id; -1 if none.
    EosId,
    /// Padding id; -1 if none.
    PadId,
    /// Total parameter count.
    NParams,
    /// Sliding attention window; 0 if attention is not windowed.
    SlidingWindow,
    /// 1 if the output head is the embedding matrix.
    TiedEmbeddings,
}

impl ModelInfo {
    fn to_raw(self) -> sys::eurollm_model_info {
        use sys::eurollm_model_info as K;
        match self {
            ModelInfo::NVocab => K::EUROLLM_INFO_N_VOCAB,
            ModelInfo::NEmbd => K::EUROLLM_INFO_N_EMBD,
            ModelInfo::NLayer => K::EUROLLM_INFO_N_LAYER,
            ModelInfo::NHead => K::EUROLLM_INFO_N_HEAD,
            ModelInfo::NHeadKv => K::EUROLLM_INFO_N_HEAD_KV,
            ModelInfo::HeadDim => K::EUROLLM_INFO_HEAD_DIM,
            ModelInfo::NFf => K::EUROLLM_INFO_N_FF,
            ModelInfo::NCtxTrain => K::EUROLLM_INFO_N_CTX_TRAIN,
            ModelInfo::BosId => K::EUROLLM_INFO_BOS_ID,
            ModelInfo::EosId => K::EUROLLM_INFO_EOS_ID,
            ModelInfo::PadId => K::EUROLLM_INFO_PAD_ID,
            ModelInfo::NParams => K::EUROLLM_INFO_N_PARAMS,
            ModelInfo::SlidingWindow => K::EUROLLM_INFO_SLIDING_WINDOW,
            ModelInfo::TiedEmbeddings => K::EUROLLM_INFO_TIED_EMBEDDINGS,
        }
    }
}

/// Flags of [`Model::tokenize_with`] (`EUROLLM_TOKENIZE_*`), combined with `|`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TokenizeFlags(u32);

impl TokenizeFlags {
    /// Plain text: no BOS, special-token text stays text.
    pub const NONE: TokenizeFlags = TokenizeFlags(0);
    /// Prepend BOS (when the model has one).
    pub const ADD_BOS: TokenizeFlags = TokenizeFlags(sys::EUROLLM_TOKENIZE_ADD_BOS);
    /// `"<|im_start|>"` in the text becomes its special id.
    pub const PARSE_SPECIAL: TokenizeFlags = TokenizeFlags(sys::EUROLLM_TOKENIZE_PARSE_SPECIAL);
    /// BOS as the model's tokenizer_config.json says (`add_bos_token`), and PARSE_SPECIAL.
    pub const MODEL_DEFAULT: TokenizeFlags = TokenizeFlags(sys::EUROLLM_TOKENIZE_MODEL_DEFAULT);

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Flags from raw bits, unknown bits kept (the library rejects them with InvalidArgument).
    pub const fn from_bits_retain(bits: u32) -> TokenizeFlags {
        TokenizeFlags(bits)
    }
    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: TokenizeFlags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for TokenizeFlags {
    type Output = TokenizeFlags;
    fn bitor(self, rhs: TokenizeFlags) -> TokenizeFlags {
        TokenizeFlags(self.0 | rhs.0)
    }
}

impl BitOrAssign for TokenizeFlags {
    fn bitor_assign(&mut self, rhs: TokenizeFlags) {
        self.0 |= rhs.0;
    }
}

/// A loaded model (`eurollm_model`): weights, hyper-parameters and tokenizer.
///
/// A model is immutable after loading and is shared freely: it is `Send + Sync`, so one model
/// can serve [`Context`]s on many threads (wrap it in an `Arc`, or use scoped threads). Every
/// context borrows its model, so the model outlives its contexts by construction; dropping the
/// model calls `eurollm_model_free`.
///
/// ```
/// # fn main() -> eurollm::Result<()> {
/// # let Some(dir) = eurollm::__doctest::stories_dir() else { return Ok(()) };
/// let model = eurollm::Model::load(&dir)?;
/// assert_eq!(model.architecture(), "llama");
/// let ids = model.tokenize("Once upon a time")?;
/// assert_eq!(ids[0], model.bos_token().unwrap());
/// assert_eq!(model.detokenize(&ids)?, "Once upon a time");
/// # Ok(())
/// # }
/// ```
pub struct Model {
    raw: NonNull<sys::eurollm_model>,
    max_piece_len: OnceLock<usize>,
}

// SAFETY: eurollm.h: "an eurollm_model is immutable after load and may be shared by any number of
// threads", and the tokenizer functions on it are thread-safe. Error messages are per thread and
// are read on the thread that made the call. The handle is freed once, by Drop, when no borrow
// (no Context) is left.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl Model {
    /// Load a model with default parameters: a Hugging Face directory (config.json,
    /// *.safetensors, tokenizer.model) or, where supported, a GGUF file.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Model::load_with(path, &ModelParams::default())
    }

    /// Load a model with explicit parameters.
    pub fn load_with(path: impl AsRef<Path>, params: &ModelParams) -> Result<Model> {
        let path = c_path(path.as_ref())?;
        let raw_params = params.to_raw();
        let mut out: *mut sys::eurollm_model = std::ptr::null_mut();
        // SAFETY: valid C string and params; `out` receives an owned handle on success.
        check(unsafe { sys::eurollm_model_load(path.as_ptr(), &raw_params, &mut out) })?;
        Model::from_raw(out)
    }

    /// Take ownership of a handle just returned by a successful load.
    pub(crate) fn from_raw(out: *mut sys::eurollm_model) -> Result<Model> {
        let raw = NonNull::new(out).ok_or_else(|| Error::new(ErrorKind::Generic, "the model load returned NULL"))?;
        Ok(Model { raw, max_piece_len: OnceLock::new() })
    }

    /// The raw handle, for calls the safe API does not wrap yet. It stays owned by `self`.
    pub fn as_ptr(&self) -> *mut sys::eurollm_model {
        self.raw.as_ptr()
    }

    /// An integer property.
    pub fn info(&self, key: ModelInfo) -> Result<i64> {
        let mut v = 0i64;
        // SAFETY: live handle, valid out pointer.
        check(unsafe { sys::eurollm_model_get_info(self.raw.as_ptr(), key.to_raw(), &mut v) })?;
        Ok(v)
    }

    /// Write the model as a GGUF v3 file that llama.cpp loads (`eurollm_model_save_gguf`),
    /// atomically; [`WeightType::Auto`] keeps each tensor's stored type.
    pub fn save_gguf(&self, path: impl AsRef<Path>, weight_type: WeightType) -> Result<()> {
        let path = c_path(path.as_ref())?;
        // SAFETY: live handle; valid C string.
        check(unsafe { sys::eurollm_model_save_gguf(self.raw.as_ptr(), path.as_ptr(), weight_type.to_raw()) })?;
        Ok(())
    }

    fn info_or(&self, key: ModelInfo, default: i64) -> i64 {
        self.info(key).unwrap_or(default)
    }

    /// Vocabulary size.
    pub fn n_vocab(&self) -> usize {
        self.info_or(ModelInfo::NVocab, 0).max(0) as usize
    }

    /// Hidden size (the embedding dimension).
    pub fn n_embd(&self) -> usize {
        self.info_or(ModelInfo::NEmbd, 0).max(0) as usize
    }

    /// The context length the model was trained with (`max_position_embeddings`).
    pub fn n_ctx_train(&self) -> usize {
        self.info_or(ModelInfo::NCtxTrain, 0).max(0) as usize
    }

    /// The BOS token, if the model has one.
    pub fn bos_token(&self) -> Option<i32> {
        let id = self.info_or(ModelInfo::BosId, -1);
        (id >= 0).then_some(id as i32)
    }

    /// Every end-of-generation token id (config, generation_config, tokenizer).
    pub fn eos_tokens(&self) -> Result<Vec<i32>> {
        // SAFETY: live handle; fill_buffer passes a buffer of `cap` entries (or NULL with 0).
        fill_buffer(4, 0, |buf, cap, n| unsafe { sys::eurollm_model_eos_ids(self.raw.as_ptr(), buf, cap, n) })
    }

    /// The architecture named in config.json ("llama", "mistral").
    pub fn architecture(&self) -> String {
        // SAFETY: borrowed from the model, copied at once; "" for an invalid handle.
        unsafe { cstr_lossy(sys::eurollm_model_architecture(self.raw.as_ptr())) }
    }

    /// The chat template from tokenizer_config.json, if the model has one.
    pub fn chat_template(&self) -> Option<String> {
        // SAFETY: NULL or a string borrowed from the model, copied at once.
        let p = unsafe { sys::eurollm_model_chat_template(self.raw.as_ptr()) };
        // SAFETY: checked for NULL; NUL-terminated.
        (!p.is_null()).then(|| unsafe { cstr_lossy(p) })
    }

    /// Text to token ids, as the model's tokenizer_config.json says (BOS when `add_bos_token`,
    /// special tokens parsed): the flags generation uses for a prompt.
    pub fn tokenize(&self, text: &str) -> Result<Vec<i32>> {
        self.tokenize_with(text, TokenizeFlags::MODEL_DEFAULT)
    }

    /// Text to token ids with explicit flags.
    pub fn tokenize_with(&self, text: &str, flags: TokenizeFlags) -> Result<Vec<i32>> {
        self.tokenize_bytes(text.as_bytes(), flags)
    }

    /// Bytes to token ids; bytes that are not UTF-8 are an [`ErrorKind::InvalidArgument`] error.
    pub fn tokenize_bytes(&self, text: &[u8], flags: TokenizeFlags) -> Result<Vec<i32>> {
        let ptr = text.as_ptr() as *const std::os::raw::c_char;
        // SAFETY: `text` is valid for its length; the output buffer is sized by fill_buffer.
        fill_buffer(text.len() + 2, 0, |buf, cap, n| unsafe {
            sys::eurollm_tokenize(self.raw.as_ptr(), ptr, text.len(), flags.bits(), buf, cap, n)
        })
    }

    /// Token ids to text (control tokens give no text). Out-of-range ids are an
    /// [`ErrorKind::InvalidArgument`] error. Bytes that do not form UTF-8 (a sequence cut in the
    /// middle of a character) become U+FFFD; [`Model::detokenize_bytes`] gives them as they are.
    pub fn detokenize(&self, tokens: &[i32]) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.detokenize_bytes(tokens)?).into_owned())
    }

    /// Token ids to the exact bytes of their text.
    pub fn detokenize_bytes(&self, tokens: &[i32]) -> Result<Vec<u8>> {
        // SAFETY: `tokens` is valid for its length; the text buffer is sized by fill_buffer.
        let bytes = fill_buffer(tokens.len() * 8 + 16, 1, |buf: *mut std::os::raw::c_char, cap, n| unsafe {
            sys::eurollm_detokenize(self.raw.as_ptr(), tokens.as_ptr(), tokens.len(), buf, cap, n)
        })?;
        Ok(bytes.into_iter().map(|c| c as u8).collect())
    }

    /// The vocabulary piece of one token, as stored ("▁the", "<0x0A>", "<|im_end|>").
    pub fn token_to_piece(&self, token: i32) -> Result<String> {
        // SAFETY: the piece buffer is sized by fill_buffer.
        let bytes = fill_buffer(32, 1, |buf: *mut std::os::raw::c_char, cap, n| unsafe {
            sys::eurollm_token_to_piece(self.raw.as_ptr(), token, buf, cap, n)
        })?;
        let bytes: Vec<u8> = bytes.into_iter().map(|c| c as u8).collect();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// A context on this model (KV cache, scratch, threads); same as [`Context::new`].
    pub fn context(&self, params: &ContextParams) -> Result<Context<'_>> {
        Context::new(self, params)
    }

    /// The longest vocabulary piece in bytes: a bound on the text one token adds.
    pub(crate) fn max_piece_len(&self) -> usize {
        *self.max_piece_len.get_or_init(|| {
            let mut buf = [0 as std::os::raw::c_char; 256];
            let mut longest = 0usize;
            for id in 0..self.n_vocab() {
                let mut n = 0usize;
                // SAFETY: a 256-byte buffer; BUFFER_TOO_SMALL still reports the length in `n`.
                let s = unsafe {
                    sys::eurollm_token_to_piece(self.raw.as_ptr(), id as i32, buf.as_mut_ptr(), buf.len(), &mut n)
                };
                if s.0 >= 0 || s == sys::eurollm_status::EUROLLM_ERR_BUFFER_TOO_SMALL {
                    longest = longest.max(n);
                }
            }
            longest
        })
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: the handle is owned and freed once; no Context borrows the model any more.
        unsafe { sys::eurollm_model_free(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model")
            .field("architecture", &self.architecture())
            .field("n_vocab", &self.n_vocab())
            .field("n_embd", &self.n_embd())
            .finish()
    }
}
