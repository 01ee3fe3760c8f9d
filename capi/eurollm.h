/*
 * eurollm.h -- the public C99 API of libeurollm.
 *
 * libeurollm runs Llama-family language models (EuroLLM, Salamandra, Teuken, Occiglot, Mistral and
 * their kin) inside other programs. This header is the only public surface: every binding (Python,
 * Java, Rust) and every native application goes through it.
 *
 * Usage:
 *
 *     eurollm_model_params mp;
 *     eurollm_model_params_init(&mp, EUROLLM_MODEL_PARAMS_VERSION);
 *     eurollm_model *model = NULL;
 *     if (eurollm_model_load("models/EuroLLM-1.7B", &mp, &model) != EUROLLM_OK) {
 *         fprintf(stderr, "load failed: %s\n", eurollm_last_error());
 *         return 1;
 *     }
 *     eurollm_context_params cp;
 *     eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION);
 *     eurollm_context *ctx = NULL;
 *     eurollm_context_init(model, &cp, &ctx);
 *
 *     int32_t prompt[256]; size_t n_prompt = 0;
 *     eurollm_tokenize(model, "Once upon a time", 16, EUROLLM_TOKENIZE_ADD_BOS,
 *                      prompt, 256, &n_prompt);
 *
 *     eurollm_generator_params gp;
 *     eurollm_generator_params_init(&gp, EUROLLM_GENERATOR_PARAMS_VERSION);
 *     gp.temperature = 0.0f;            (greedy)
 *     gp.max_tokens = 64;
 *     eurollm_generator *gen = NULL;
 *     eurollm_generator_init(ctx, &gp, &gen);
 *     eurollm_generator_append_tokens(gen, prompt, n_prompt);
 *     int32_t tok; eurollm_status st;
 *     while ((st = eurollm_generator_step(gen, &tok)) == EUROLLM_OK) {
 *         const char *text; size_t len;
 *         eurollm_generator_text_delta(gen, &text, &len);
 *         fwrite(text, 1, len, stdout);
 *     }
 *     if (st != EUROLLM_DONE) fprintf(stderr, "%s\n", eurollm_last_error());
 *     eurollm_generator_free(gen);
 *     eurollm_context_free(ctx);
 *     eurollm_model_free(model);
 *
 * Conventions (they hold for every function below):
 *  - Every fallible function returns eurollm_status: 0 = OK, negative = error, positive = a
 *    non-error state (EUROLLM_DONE). On error, eurollm_last_error() describes the problem; it is
 *    per thread, owned by the library and valid until the next call on the same thread.
 *  - `**out` arguments: the caller owns the result and frees it with the matching _free. Every
 *    _free accepts NULL. On failure *out is set to NULL.
 *  - Returned `const` pointers are borrowed: valid until the next mutating call on the same handle.
 *  - Input buffers are copied.
 *  - Variable-size outputs use caller buffers: on EUROLLM_ERR_BUFFER_TOO_SMALL the `*n_out` /
 *    `*len_out` argument holds the size needed. Passing cap = 0 with a NULL buffer is the way to ask.
 *  - Children are freed before their parent: generator before context before model.
 *  - Threads: an eurollm_model is immutable after load and may be shared by any number of threads.
 *    A context and the generator on it are used by one thread at a time.
 *  - Nothing in the library aborts or exits the host process; invalid handles (NULL or freed)
 *    give EUROLLM_ERR_INVALID_ARGUMENT.
 */
#ifndef EUROLLM_H
#define EUROLLM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && !defined(__GNUC__)
#  ifdef EUROLLM_BUILD
#    define EUROLLM_API __declspec(dllexport)
#  else
#    define EUROLLM_API __declspec(dllimport)
#  endif
#else
#  define EUROLLM_API __attribute__((visibility("default")))
#endif

#if defined(__GNUC__) || defined(__clang__)
#  define EUROLLM_DEPRECATED(hint) __attribute__((deprecated(hint)))
#else
#  define EUROLLM_DEPRECATED(hint)
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------------
 * Versions
 * ------------------------------------------------------------------------------------------- */

#define EUROLLM_VERSION_MAJOR 0
#define EUROLLM_VERSION_MINOR 2
#define EUROLLM_VERSION_PATCH 0
#define EUROLLM_VERSION_STRING "0.2.0"
#define EUROLLM_VERSION_NUMBER \
    (EUROLLM_VERSION_MAJOR * 10000 + EUROLLM_VERSION_MINOR * 100 + EUROLLM_VERSION_PATCH)

/** @brief Runtime twin of EUROLLM_VERSION_NUMBER (the library actually loaded). */
EUROLLM_API int eurollm_version_number(void);
/** @brief Runtime twin of EUROLLM_VERSION_STRING. Static storage; never NULL. */
EUROLLM_API const char *eurollm_version_string(void);

/* ---------------------------------------------------------------------------------------------
 * Status and errors
 * ------------------------------------------------------------------------------------------- */

/** Values are never renumbered or reused. */
typedef enum eurollm_status {
    EUROLLM_OK = 0,
    EUROLLM_DONE = 1,                   /**< the generator finished (stop token, string, max) */
    EUROLLM_ERR_GENERIC = -1,
    EUROLLM_ERR_INVALID_ARGUMENT = -2,  /**< NULL/freed handle, bad value, bad text */
    EUROLLM_ERR_OUT_OF_MEMORY = -3,
    EUROLLM_ERR_DEVICE = -4,            /**< CUDA/HIP failure, device out of memory */
    EUROLLM_ERR_IO = -5,                /**< a file is missing, unreadable or unwritable */
    EUROLLM_ERR_BAD_MODEL = -6,         /**< a model file is malformed or disagrees with config */
    EUROLLM_ERR_BUFFER_TOO_SMALL = -7,  /**< the needed size is reported through the size argument */
    EUROLLM_ERR_CONTEXT_FULL = -8,      /**< the tokens do not fit in the context */
    EUROLLM_ERR_ABORTED = -9,           /**< the abort callback asked to stop */
    EUROLLM_ERR_UNSUPPORTED = -10       /**< a valid request this build cannot serve */
} eurollm_status;

/** @brief The message of the last failed call on this thread ("" if none). Never NULL. */
EUROLLM_API const char *eurollm_last_error(void);
/** @brief A fixed English name for a status ("invalid argument"). Never NULL. */
EUROLLM_API const char *eurollm_status_string(eurollm_status status);

/* ---------------------------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------------------------- */

typedef enum eurollm_log_level {
    EUROLLM_LOG_DEBUG = 0,
    EUROLLM_LOG_INFO = 1,
    EUROLLM_LOG_WARN = 2,
    EUROLLM_LOG_ERROR = 3,
    EUROLLM_LOG_NONE = 4
} eurollm_log_level;

/** @brief Receives one log line (no trailing newline). May be called from any library thread. */
typedef void (*eurollm_log_cb)(eurollm_log_level level, const char *message, void *user_data);

/**
 * @brief Route the library's log lines to `cb` (NULL restores the default: WARN and above to stderr).
 * @param min_level lines below this level are dropped before the callback.
 * Process-wide; call it before loading models, not concurrently with other calls.
 */
EUROLLM_API void eurollm_log_set(eurollm_log_cb cb, eurollm_log_level min_level, void *user_data);

/* ---------------------------------------------------------------------------------------------
 * Devices
 * ------------------------------------------------------------------------------------------- */

typedef enum eurollm_device_kind {
    EUROLLM_DEVICE_AUTO = 0,  /**< the CPU for now: a GPU is used only when asked for (the trainer still runs on the CPU) */
    EUROLLM_DEVICE_CPU = 1,
    EUROLLM_DEVICE_CUDA = 2,
    EUROLLM_DEVICE_HIP = 3
} eurollm_device_kind;

/** @brief Number of usable devices of a kind (CPU: 1; a GPU kind not compiled in: 0). */
EUROLLM_API int eurollm_device_count(eurollm_device_kind kind);

/**
 * @brief A device's name ("NVIDIA H100 80GB HBM3 (sm_90)"; the CPU: "cpu"), NUL-terminated into text.
 * @param len_out the name's length without the NUL; on BUFFER_TOO_SMALL, the length needed.
 * @return OK, INVALID_ARGUMENT (unknown kind, index out of range, NULL len_out), BUFFER_TOO_SMALL, DEVICE.
 */
EUROLLM_API eurollm_status eurollm_device_name(eurollm_device_kind kind, int32_t index, char *text, size_t cap,
                                               size_t *len_out);
/**
 * @brief A GPU's memory in bytes: total, and free now (either pointer may be NULL). The CPU answers 0 and 0.
 * @return OK, INVALID_ARGUMENT (unknown kind, index out of range), DEVICE.
 */
EUROLLM_API eurollm_status eurollm_device_memory(eurollm_device_kind kind, int32_t index, uint64_t *total_bytes,
                                                 uint64_t *free_bytes);

/**
 * How activations meet bf16 weights in matrix products (f32 weights ignore it; so do f16 weights,
 * except in products of 8 rows or more on CPUs with AMX, where each f16 weight is split exactly into
 * two bf16 terms and the activations are handled as for bf16 weights).
 * EXACT computes with the float32 activations (float32 results: what the reference tests against
 * transformers use); on CPUs with AMX, products of 8 rows or more split each activation into three
 * bf16 terms that sum to it exactly, so they run on the tiles with exact products, and on Zen 4
 * into two (16 of the 24 significand bits, ~1e-5 relative). BF16 rounds activations to bf16, as
 * PyTorch's bf16 autocast and llama.cpp do: faster where a product is compute-bound (prompt
 * processing, batched decoding, training; about 1.7x EXACT with AMX, 1.75x on Zen 4 without it),
 * the same elsewhere; with AMX a prompt's attention also takes bf16 operands (softmax in float32),
 * where EXACT splits them into three terms each.
 * Quantized weights quantize activations to 8 bits per block (32 elements for q8_0/q4_0, 256 for
 * q4_k/q6_k) in both modes; under BF16, q8_0/q4_0 products
 * of 64 rows or more (prompts) on CPUs with AMX instead dequantize the weights to bf16 (rounded
 * once) and use bf16 activations: about 1.6x the prompt speed, logits about as close to the
 * unquantized model as the integer product's (stories260K held-out perplexity, f32 3.126: q8_0
 * 3.138 against 3.158, q4_0 3.365 against 3.344).
 */
typedef enum eurollm_precision {
    EUROLLM_PRECISION_EXACT = 0, /**< default */
    EUROLLM_PRECISION_BF16 = 1
} eurollm_precision;

/* ---------------------------------------------------------------------------------------------
 * Model
 * ------------------------------------------------------------------------------------------- */

/** A loaded model: weights, hyper-parameters, tokenizer. Immutable; shareable across threads. */
typedef struct eurollm_model eurollm_model;

/**
 * How the 2-D weights (token embedding, attention and MLP projections, output head) are stored: when
 * a model is converted at load (eurollm_model_params.weight_type) and when it is written as GGUF
 * (eurollm_model_save_gguf). Norms always stay as they are (F32 in GGUF). The rules are llama.cpp's
 * quantize rules: with Q4_0 the output head (the token embedding when tied) is kept at Q8_0 (llama.cpp
 * raises it to Q6_K); Q4_K is llama.cpp's Q4_K_M mix (the output head, and attn_v and ffn_down in
 * about a third of the layers, at Q6_K); a weight whose rows the blocks do not divide falls back to Q8_0
 * (Q4_K and Q6_K, rows of a multiple of 32) or F16. Quantized types trade accuracy for memory and
 * decode speed.
 */
typedef enum eurollm_weight_type {
    EUROLLM_WEIGHT_AUTO = 0,  /**< keep each tensor's stored type */
    EUROLLM_WEIGHT_F32 = 1,
    EUROLLM_WEIGHT_F16 = 2,
    EUROLLM_WEIGHT_BF16 = 3,
    EUROLLM_WEIGHT_Q8_0 = 4,  /**< llama.cpp Q8_0: blocks of 32 int8 and an f16 scale (8.5 bits/weight) */
    EUROLLM_WEIGHT_Q4_0 = 5,  /**< llama.cpp Q4_0: blocks of 32 4-bit values and an f16 scale (4.5 bits/weight) */
    EUROLLM_WEIGHT_Q4_K = 6,  /**< llama.cpp Q4_K_M: Q4_K (4-bit, scales and mins per 32) mixed with Q6_K */
    EUROLLM_WEIGHT_Q6_K = 7   /**< llama.cpp Q6_K: 256 6-bit values, int8 scales per 16 (6.56 bits/weight) */
} eurollm_weight_type;

typedef struct eurollm_model_params {
    uint32_t version;            /**< EUROLLM_MODEL_PARAMS_VERSION */
    eurollm_device_kind device;  /**< default EUROLLM_DEVICE_AUTO */
    int32_t device_index;        /**< which device of that kind; default 0 */
    int32_t n_gpu_layers;        /**< layers placed on the GPU (the first N; the rest run on the CPU); -1 = all (default) */
    bool use_mmap;               /**< map weight files instead of reading them; default true */
    /* version 2 */
    /**
     * Convert the 2-D weights to this type at load, in memory, one tensor at a time (the peak is the
     * converted model plus one source tensor); default EUROLLM_WEIGHT_AUTO = as stored. The result is
     * the same, byte for byte, as writing the model with eurollm_model_save_gguf and loading that file.
     */
    eurollm_weight_type weight_type;
    /* new fields are appended only, with a version bump */
} eurollm_model_params;
#define EUROLLM_MODEL_PARAMS_VERSION 2

/** @brief Fill `params` with defaults. @return INVALID_ARGUMENT for NULL or an unknown version. */
EUROLLM_API eurollm_status eurollm_model_params_init(eurollm_model_params *params, uint32_t version);

/**
 * @brief Load a model.
 * @param path a Hugging Face model directory (config.json, *.safetensors, tokenizer.model, ...)
 *             or, where supported, a GGUF file.
 * @param params NULL for defaults.
 * @param[out] out the model; free with eurollm_model_free.
 * @return OK, IO (missing/unreadable file), BAD_MODEL (malformed or inconsistent files, with the
 *         file and tensor named), UNSUPPORTED (an architecture or option this build lacks).
 */
EUROLLM_API eurollm_status eurollm_model_load(const char *path, const eurollm_model_params *params,
                                              eurollm_model **out);
/** @brief Free a model. NULL is a no-op. Every context on it must be freed first. */
EUROLLM_API void eurollm_model_free(eurollm_model *model);

/**
 * @brief Write the model as a GGUF v3 file that llama.cpp loads: llama metadata, the vocabulary and
 * chat template, the weights as `type` (see eurollm_weight_type; AUTO keeps each tensor's type).
 * Written atomically (temporary file beside `path`, fsync, rename): a failure leaves no partial file
 * and an existing file at `path` intact. May be called while other threads use the model.
 * @return OK, INVALID_ARGUMENT (NULL/freed model, NULL or empty path, unknown type), IO (the file
 *         cannot be created or written), UNSUPPORTED (a model GGUF's llama architecture cannot hold:
 *         biases, sliding window, llama3 rope scaling).
 */
EUROLLM_API eurollm_status eurollm_model_save_gguf(const eurollm_model *model, const char *path,
                                                   eurollm_weight_type type);

/** Integer properties of a loaded model. */
typedef enum eurollm_model_info {
    EUROLLM_INFO_N_VOCAB = 0,
    EUROLLM_INFO_N_EMBD = 1,        /**< hidden size (embedding dimension) */
    EUROLLM_INFO_N_LAYER = 2,
    EUROLLM_INFO_N_HEAD = 3,
    EUROLLM_INFO_N_HEAD_KV = 4,
    EUROLLM_INFO_HEAD_DIM = 5,
    EUROLLM_INFO_N_FF = 6,          /**< MLP intermediate size */
    EUROLLM_INFO_N_CTX_TRAIN = 7,   /**< max_position_embeddings */
    EUROLLM_INFO_BOS_ID = 8,        /**< -1 if none */
    EUROLLM_INFO_EOS_ID = 9,        /**< the first end-of-sequence id; -1 if none */
    EUROLLM_INFO_PAD_ID = 10,       /**< -1 if none */
    EUROLLM_INFO_N_PARAMS = 11,     /**< total parameter count */
    EUROLLM_INFO_SLIDING_WINDOW = 12, /**< 0 if attention is not windowed */
    EUROLLM_INFO_TIED_EMBEDDINGS = 13 /**< 1 if the output head is the embedding matrix */
} eurollm_model_info;

/** @brief Read an integer property. @param[out] value the property. */
EUROLLM_API eurollm_status eurollm_model_get_info(const eurollm_model *model, eurollm_model_info key,
                                                  int64_t *value);
/** @brief Architecture name from config.json ("llama", "mistral"). Borrowed from the model. */
EUROLLM_API const char *eurollm_model_architecture(const eurollm_model *model);
/**
 * @brief The chat template string from tokenizer_config.json, or NULL if the model has none.
 * Borrowed from the model.
 */
EUROLLM_API const char *eurollm_model_chat_template(const eurollm_model *model);
/**
 * @brief All end-of-generation token ids of the model (config, generation_config, tokenizer).
 * @param[out] ids caller buffer of `cap` entries (may be NULL when cap is 0).
 * @param[out] n_out the number of ids; BUFFER_TOO_SMALL if it exceeds cap.
 */
EUROLLM_API eurollm_status eurollm_model_eos_ids(const eurollm_model *model, int32_t *ids, size_t cap,
                                                 size_t *n_out);

/* ---------------------------------------------------------------------------------------------
 * Tokenizer (part of the model; thread-safe)
 * ------------------------------------------------------------------------------------------- */

/** Flags for eurollm_tokenize, OR-ed together. */
#define EUROLLM_TOKENIZE_ADD_BOS 1u       /**< prepend BOS (when the model has one) */
#define EUROLLM_TOKENIZE_PARSE_SPECIAL 2u /**< "<|im_start|>" in the text becomes its special id */
/** ADD_BOS when tokenizer_config.json says add_bos_token (the default there), and PARSE_SPECIAL. */
#define EUROLLM_TOKENIZE_MODEL_DEFAULT 4u

/**
 * @brief Text to token ids.
 * @param text UTF-8 (need not be NUL-terminated); invalid UTF-8 is INVALID_ARGUMENT.
 * @param[out] tokens caller buffer of `cap` entries.
 * @param[out] n_out number of tokens; BUFFER_TOO_SMALL with the needed count when cap is short.
 */
EUROLLM_API eurollm_status eurollm_tokenize(const eurollm_model *model, const char *text, size_t text_len,
                                            uint32_t flags, int32_t *tokens, size_t cap, size_t *n_out);
/**
 * @brief Token ids to text (the inverse of eurollm_tokenize; BOS/EOS and other control tokens
 * produce no text). Out-of-range ids are INVALID_ARGUMENT.
 * @param[out] text caller buffer of `cap` bytes; NUL-terminated when it fits.
 * @param[out] len_out the text length in bytes, without the NUL; BUFFER_TOO_SMALL when cap <= len.
 */
EUROLLM_API eurollm_status eurollm_detokenize(const eurollm_model *model, const int32_t *tokens, size_t n_tokens,
                                              char *text, size_t cap, size_t *len_out);
/**
 * @brief The vocabulary piece of one token, as stored ("▁the", "<0x0A>", "<|im_end|>").
 * Same buffer rules as eurollm_detokenize.
 */
EUROLLM_API eurollm_status eurollm_token_to_piece(const eurollm_model *model, int32_t token, char *piece,
                                                  size_t cap, size_t *len_out);

/* ---------------------------------------------------------------------------------------------
 * Context: KV cache, scratch, threads. One thread at a time.
 * ------------------------------------------------------------------------------------------- */

typedef struct eurollm_context eurollm_context;

typedef struct eurollm_context_params {
    uint32_t version;   /**< EUROLLM_CONTEXT_PARAMS_VERSION */
    uint32_t n_ctx;     /**< tokens the KV cache holds; 0 = min(model n_ctx_train, 4096) (default) */
    uint32_t n_batch;   /**< most tokens evaluated in one pass; default 512 */
    int32_t n_threads;  /**< CPU threads; 0 = one per core (default) */
    uint64_t seed;      /**< default seed for samplers created on this context; default 0 */
    /* version 2 */
    eurollm_precision precision; /**< bf16-weight products; default EUROLLM_PRECISION_EXACT (also for embeddings) */
    /* version 3 */
    /** Element type of the KV cache: EUROLLM_WEIGHT_F32 (default; AUTO means F32) or
     *  EUROLLM_WEIGHT_F16 (half the memory and cache traffic, as llama.cpp's default; keys and values
     *  are rounded to f16, so logits differ from F32's in their last digits); others INVALID_ARGUMENT. */
    eurollm_weight_type kv_type;
    /* new fields are appended only, with a version bump */
} eurollm_context_params;
#define EUROLLM_CONTEXT_PARAMS_VERSION 3

EUROLLM_API eurollm_status eurollm_context_params_init(eurollm_context_params *params, uint32_t version);
/**
 * @brief Create a context on a model. @param params NULL for defaults.
 * @param[out] out free with eurollm_context_free (before the model).
 */
EUROLLM_API eurollm_status eurollm_context_init(eurollm_model *model, const eurollm_context_params *params,
                                                eurollm_context **out);
EUROLLM_API void eurollm_context_free(eurollm_context *ctx);
/** @brief Capacity of the KV cache in tokens. 0 for an invalid handle. */
EUROLLM_API uint32_t eurollm_context_n_ctx(const eurollm_context *ctx);
/** @brief Tokens currently held in the KV cache. 0 for an invalid handle. */
EUROLLM_API uint32_t eurollm_context_n_past(const eurollm_context *ctx);
/** @brief Forget every cached token. */
EUROLLM_API eurollm_status eurollm_context_reset(eurollm_context *ctx);
/**
 * @brief Evaluate tokens after those already cached and return the logits of the last one.
 * @param[out] logits borrowed, n_vocab floats, valid until the next call on ctx (may be NULL).
 * @return CONTEXT_FULL if the tokens do not fit; INVALID_ARGUMENT for an id outside the vocabulary.
 */
EUROLLM_API eurollm_status eurollm_context_decode(eurollm_context *ctx, const int32_t *tokens, size_t n_tokens,
                                                  const float **logits);
/**
 * @brief Evaluate tokens after those already cached and copy the logits of every one of them.
 * @param[out] logits caller buffer of n_tokens * n_vocab floats (row-major).
 */
EUROLLM_API eurollm_status eurollm_context_decode_all(eurollm_context *ctx, const int32_t *tokens,
                                                      size_t n_tokens, float *logits, size_t cap);

/* ---------------------------------------------------------------------------------------------
 * Several sequences in one context. Sequence ids run from 0 to EUROLLM_MAX_SEQUENCES - 1 and share
 * the context's n_ctx cache cells; sequences copied from one another share their common prefix.
 * The single-sequence calls above (decode, decode_all, n_past) act on sequence 0; reset clears all.
 * ------------------------------------------------------------------------------------------- */

#define EUROLLM_MAX_SEQUENCES 64

/** @brief Tokens held for sequence `seq`. */
EUROLLM_API eurollm_status eurollm_context_seq_n_past(const eurollm_context *ctx, int32_t seq, uint32_t *n_past);
/** @brief Forget positions [p0, end) of a sequence (p0 = 0 removes it). */
EUROLLM_API eurollm_status eurollm_context_seq_remove(eurollm_context *ctx, int32_t seq, uint32_t p0);
/**
 * @brief Make the empty sequence `dst` share the first `n` positions of `src` (n < 0: all), without
 * copying or re-evaluating them: prefix sharing.
 */
EUROLLM_API eurollm_status eurollm_context_seq_copy(eurollm_context *ctx, int32_t src, int32_t dst, int32_t n);
/** @brief Forget every sequence except `seq`. */
EUROLLM_API eurollm_status eurollm_context_seq_keep(eurollm_context *ctx, int32_t seq);
/**
 * @brief Evaluate runs of tokens for several sequences in one batch.
 * @param seq_ids, tokens, n_tokens: n_seqs entries; tokens[i] continues sequence seq_ids[i].
 * @return CONTEXT_FULL (nothing evaluated) if they do not fit; INVALID_ARGUMENT for a repeated or
 *         out-of-range sequence id or token id.
 */
EUROLLM_API eurollm_status eurollm_context_decode_seqs(eurollm_context *ctx, const int32_t *seq_ids,
                                                       const int32_t *const *tokens, const size_t *n_tokens,
                                                       size_t n_seqs);
/**
 * @brief Logits of the last evaluated token of a sequence. Borrowed until the next call on ctx.
 * @return INVALID_ARGUMENT if the sequence has no evaluated token.
 */
EUROLLM_API eurollm_status eurollm_context_seq_logits(eurollm_context *ctx, int32_t seq, const float **logits);

/* ---------------------------------------------------------------------------------------------
 * Context state: every sequence's tokens, last logits and KV cache, to a buffer or a file. A state
 * is refused (INVALID_ARGUMENT) when loaded into a context of a different model. Generators
 * (sampler state) are not part of it: create them again after loading. Keys and values are saved
 * as f32 whatever the context's kv_type (F16 widens exactly; an F16 context rounds what it loads).
 * ------------------------------------------------------------------------------------------- */

/** @brief Serialize the state. @param[out] size_out bytes needed; BUFFER_TOO_SMALL when cap is short. */
EUROLLM_API eurollm_status eurollm_context_state_save(const eurollm_context *ctx, void *buf, size_t cap,
                                                      size_t *size_out);
/** @brief Replace the context's state; on error the context is unchanged. */
EUROLLM_API eurollm_status eurollm_context_state_load(eurollm_context *ctx, const void *buf, size_t size);
/** @brief Save to a file, written atomically (temporary file, then rename). */
EUROLLM_API eurollm_status eurollm_context_state_save_file(const eurollm_context *ctx, const char *path);
EUROLLM_API eurollm_status eurollm_context_state_load_file(eurollm_context *ctx, const char *path);

/** @brief Return false to stop: polled between layers and tokens. */
typedef bool (*eurollm_abort_cb)(void *user_data);
/** @brief Install an abort callback on a context (NULL removes it). Work then ends with ABORTED. */
EUROLLM_API eurollm_status eurollm_context_set_abort(eurollm_context *ctx, eurollm_abort_cb cb, void *user_data);

/* ---------------------------------------------------------------------------------------------
 * Generator: prepare (append tokens) / step / finalize. One per context at a time.
 * ------------------------------------------------------------------------------------------- */

typedef struct eurollm_generator eurollm_generator;

/**
 * Called for each generated token with the text it completes (never a broken UTF-8 sequence nor
 * part of a stop string; may be ""). Return false to stop (generation then ends with DONE).
 */
typedef bool (*eurollm_token_cb)(int32_t token, const char *text, size_t text_len, void *user_data);

typedef struct eurollm_generator_params {
    uint32_t version;            /**< EUROLLM_GENERATOR_PARAMS_VERSION */
    int32_t max_tokens;          /**< new tokens at most; default 256; <= 0 means until the context is full */
    float temperature;           /**< default 0.8; 0 = greedy (argmax) */
    int32_t top_k;               /**< default 40; 0 = off */
    float top_p;                 /**< default 0.95; 1 = off */
    float min_p;                 /**< default 0.05; 0 = off */
    float repetition_penalty;    /**< default 1.0 (off); >1 penalises tokens seen (HF style) */
    float frequency_penalty;     /**< default 0 (off); OpenAI style, times the count */
    float presence_penalty;      /**< default 0 (off); OpenAI style, once per seen token */
    int32_t penalty_last_n;      /**< tokens the penalties look back over; default 64; -1 = all */
    uint64_t seed;               /**< default 0 = take the context's seed */
    bool ignore_eos;             /**< default false: the model's end-of-generation ids stop */
    /* version 2 */
    int32_t seq_id;              /**< the context sequence this generator extends; default 0 */
    /* new fields are appended only, with a version bump */
} eurollm_generator_params;
#define EUROLLM_GENERATOR_PARAMS_VERSION 2

EUROLLM_API eurollm_status eurollm_generator_params_init(eurollm_generator_params *params, uint32_t version);
/**
 * @brief Create a generator on a context. The context's cache is kept: tokens appended continue
 * the cached sequence `params->seq_id` (call eurollm_context_reset or eurollm_context_seq_remove
 * first for a fresh one). A context may carry one generator per sequence id.
 * @param params NULL for defaults.
 */
EUROLLM_API eurollm_status eurollm_generator_init(eurollm_context *ctx, const eurollm_generator_params *params,
                                                  eurollm_generator **out);
EUROLLM_API void eurollm_generator_free(eurollm_generator *gen);
/** @brief Stop when this token is sampled (in addition to the model's eos ids). */
EUROLLM_API eurollm_status eurollm_generator_add_stop_token(eurollm_generator *gen, int32_t token);
/**
 * @brief Stop when the generated text contains `text` (may span tokens). The stop string and
 * anything after it are not part of the streamed text.
 */
EUROLLM_API eurollm_status eurollm_generator_add_stop_string(eurollm_generator *gen, const char *text,
                                                             size_t text_len);
/** @brief Install a streaming callback (NULL removes it). */
EUROLLM_API eurollm_status eurollm_generator_set_callback(eurollm_generator *gen, eurollm_token_cb cb,
                                                          void *user_data);
/**
 * @brief Append prompt tokens (evaluated lazily by the next step). May be called between steps
 * to feed more input.
 * @return CONTEXT_FULL if they would not fit; INVALID_ARGUMENT for ids outside the vocabulary.
 */
EUROLLM_API eurollm_status eurollm_generator_append_tokens(eurollm_generator *gen, const int32_t *tokens,
                                                           size_t n_tokens);
/**
 * @brief Generate one token.
 * @param[out] token the new token (may be NULL).
 * @return OK with a token; DONE when generation ended (stop token, stop string, max_tokens,
 *         a full context, or the callback returned false) -- *token is then -1; an error status.
 */
EUROLLM_API eurollm_status eurollm_generator_step(eurollm_generator *gen, int32_t *token);
/**
 * @brief Text made final by the last step (see eurollm_token_cb). Borrowed until the next step.
 */
EUROLLM_API eurollm_status eurollm_generator_text_delta(const eurollm_generator *gen, const char **text,
                                                        size_t *len);
/**
 * @brief Logits (n_vocab floats, before sampling controls) from which the next token will be
 * sampled; evaluates pending tokens if needed. Borrowed until the next call on gen or its context.
 */
EUROLLM_API eurollm_status eurollm_generator_logits(eurollm_generator *gen, const float **logits,
                                                    size_t *n_vocab);
/** Why a generator finished. */
typedef enum eurollm_stop_reason {
    EUROLLM_STOP_NONE = 0,       /**< still running */
    EUROLLM_STOP_EOS = 1,        /**< an end-of-generation or stop token */
    EUROLLM_STOP_STRING = 2,     /**< a stop string */
    EUROLLM_STOP_MAX_TOKENS = 3,
    EUROLLM_STOP_CONTEXT_FULL = 4,
    EUROLLM_STOP_CALLBACK = 5    /**< the token callback returned false */
} eurollm_stop_reason;
EUROLLM_API eurollm_stop_reason eurollm_generator_stop_reason(const eurollm_generator *gen);
/** @brief Tokens generated so far by this generator. */
EUROLLM_API size_t eurollm_generator_n_generated(const eurollm_generator *gen);

/**
 * @brief One step of several generators of the same context at once: their pending tokens are
 * evaluated in a single batch (continuous batching: generators may join or leave between calls).
 * @param gens n generators on one context, each on a different sequence.
 * @param[out] tokens n entries: the new token of each generator, or -1.
 * @param[out] statuses n entries: OK or DONE per generator, as eurollm_generator_step would return.
 * @return OK, or an error that applies to the whole call (then no generator advanced).
 */
EUROLLM_API eurollm_status eurollm_generator_step_batch(eurollm_generator *const *gens, size_t n, int32_t *tokens,
                                                        eurollm_status *statuses);

/**
 * @brief Convenience: tokenize `prompt` (model default flags), generate until done, and write the
 * generated text (stop strings removed) into `text`.
 * @param[out] text caller buffer; BUFFER_TOO_SMALL with *len_out = needed length when short
 *                  (the generation is then lost; size generously or use the generator).
 */
EUROLLM_API eurollm_status eurollm_generate_text(eurollm_context *ctx, const char *prompt, size_t prompt_len,
                                                 const eurollm_generator_params *params, char *text,
                                                 size_t cap, size_t *len_out);

/* ---------------------------------------------------------------------------------------------
 * Chat: templates and conversations
 * ------------------------------------------------------------------------------------------- */

/**
 * @brief Render messages into a prompt with a chat template, exactly as transformers'
 * apply_chat_template(..., tokenize=False) does.
 * @param template_source a Jinja template, or NULL for the model's own (ChatML when it has none).
 * @param messages_json a JSON array of {"role": ..., "content": ...} objects (more keys allowed).
 * @param extra_json NULL, or a JSON object of further template variables (tools, documents, ...).
 * @param[out] text, cap, len_out the prompt; BUFFER_TOO_SMALL with the needed length when short.
 * @return INVALID_ARGUMENT for malformed JSON, a message missing role/content, a template it cannot
 *         render (the message names the reason and the template line) or raise_exception.
 */
EUROLLM_API eurollm_status eurollm_chat_apply_template(const eurollm_model *model, const char *template_source,
                                                       const char *messages_json, const char *extra_json,
                                                       bool add_generation_prompt, char *text, size_t cap,
                                                       size_t *len_out);

/**
 * A conversation kept in one sequence of a context: each reply is generated after the rendered
 * conversation, and only the tokens the context does not hold yet are evaluated. Replies stop at
 * the model's end-of-generation ids and end-of-turn tokens (<|im_end|> and the like).
 */
typedef struct eurollm_chat eurollm_chat;

/** @brief Start a conversation on sequence params->seq_id of ctx (params NULL: defaults). */
EUROLLM_API eurollm_status eurollm_chat_init(eurollm_context *ctx, const eurollm_generator_params *params,
                                             eurollm_chat **out);
EUROLLM_API void eurollm_chat_free(eurollm_chat *chat);
/** @brief Append a message (role "system", "user", ...). */
EUROLLM_API eurollm_status eurollm_chat_add_message(eurollm_chat *chat, const char *role, const char *content);
/**
 * @brief Generate the assistant's reply to the conversation so far and append it.
 * @param cb streams the reply's text as it is produced (NULL: none); returning false stops.
 * @param[out] text, cap, len_out the whole reply; BUFFER_TOO_SMALL with the needed length when short
 *         (the reply is still part of the conversation).
 */
EUROLLM_API eurollm_status eurollm_chat_respond(eurollm_chat *chat, eurollm_token_cb cb, void *user_data, char *text,
                                                size_t cap, size_t *len_out);
/** @brief Tokens fed to the model by this conversation so far (each earlier token counts once). */
EUROLLM_API eurollm_status eurollm_chat_n_evaluated(const eurollm_chat *chat, uint64_t *n);

/* ---------------------------------------------------------------------------------------------
 * Embeddings
 * ------------------------------------------------------------------------------------------- */

typedef enum eurollm_pooling {
    EUROLLM_POOLING_MEAN = 0,   /**< mean of the final hidden states of all tokens (BOS included) */
    EUROLLM_POOLING_LAST = 1,   /**< the last token's final hidden state */
    EUROLLM_POOLING_FIRST = 2,  /**< the first token's */
    EUROLLM_POOLING_NONE = 3    /**< one row per token: [total tokens, dim] */
} eurollm_pooling;

typedef struct eurollm_embed_params {
    uint32_t version;          /**< EUROLLM_EMBED_PARAMS_VERSION */
    eurollm_pooling pooling;   /**< default EUROLLM_POOLING_MEAN */
    bool normalize;            /**< L2-normalise each row; default false */
    uint32_t dim;              /**< keep the first dim components (Matryoshka); 0 = all (default) */
    uint32_t tokenize_flags;   /**< for eurollm_embed_texts; default EUROLLM_TOKENIZE_MODEL_DEFAULT */
} eurollm_embed_params;
#define EUROLLM_EMBED_PARAMS_VERSION 1

EUROLLM_API eurollm_status eurollm_embed_params_init(eurollm_embed_params *params, uint32_t version);
/**
 * @brief Embed a batch of texts of any lengths in one call. Uses the context's cache as scratch:
 * every sequence of ctx is cleared. Each text is embedded as if alone.
 * @param texts n UTF-8 strings; @param text_lens their byte lengths (NULL: NUL-terminated).
 * @param[out] out caller buffer of cap floats, row-major [n_rows, dim].
 * @param[out] n_rows_out, dim_out the shape (both set on BUFFER_TOO_SMALL too).
 */
EUROLLM_API eurollm_status eurollm_embed_texts(eurollm_context *ctx, const char *const *texts, const size_t *text_lens,
                                               size_t n, const eurollm_embed_params *params, float *out, size_t cap,
                                               size_t *n_rows_out, size_t *dim_out);
/** @brief As eurollm_embed_texts, from token lists (tokens[i] has n_tokens[i] ids). */
EUROLLM_API eurollm_status eurollm_embed_tokens(eurollm_context *ctx, const int32_t *const *tokens,
                                                const size_t *n_tokens, size_t n, const eurollm_embed_params *params,
                                                float *out, size_t cap, size_t *n_rows_out, size_t *dim_out);
/** @brief Cosine similarity of two vectors (0 when either is all zeros). */
EUROLLM_API eurollm_status eurollm_cosine_similarity(const float *a, const float *b, size_t dim, float *out);

#ifdef __cplusplus
}
#endif

#endif /* EUROLLM_H */
