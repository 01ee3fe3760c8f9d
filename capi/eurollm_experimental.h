/*
 * eurollm_experimental.h -- training: full fine-tuning and LoRA through the C ABI.
 *
 * EXPERIMENTAL: visible only when EUROLLM_EXPERIMENTAL is defined before including this header;
 * no ABI promise (names, structs and semantics may change in any release). Everything else of
 * eurollm.h's conventions holds: statuses, eurollm_last_error(), versioned params structs filled
 * by *_params_init, `**out` ownership, _free(NULL) is harmless, children before parents.
 *
 *     #define EUROLLM_EXPERIMENTAL
 *     #include "eurollm_experimental.h"
 *
 *     eurollm_trainer_params tp;
 *     eurollm_trainer_params_init(&tp, EUROLLM_TRAINER_PARAMS_VERSION);
 *     tp.mode = EUROLLM_TRAIN_LORA; tp.lora_rank = 16; tp.lora_alpha = 32;
 *     tp.lora_targets = EUROLLM_LORA_Q | EUROLLM_LORA_K | EUROLLM_LORA_V | EUROLLM_LORA_O;
 *     tp.lr = 2e-4f; tp.total_steps = 1000; tp.warmup_steps = 50;
 *     eurollm_trainer *tr = NULL;
 *     eurollm_trainer_create(model, &tp, &tr);
 *     for (...) {
 *         eurollm_train_result r;
 *         if (eurollm_trainer_step(tr, tokens, labels, n_seqs, seq_len, &r) != EUROLLM_OK) ...;
 *         if (r.step % 100 == 0) eurollm_trainer_save_checkpoint(tr, "run/");
 *     }
 *     eurollm_trainer_export_peft(tr, "run/adapter");
 *     eurollm_trainer_free(tr);
 *
 * Batches are n_seqs sequences of seq_len token ids, row-major, with labels of the same shape in
 * the Hugging Face convention: position t is trained to predict labels[t + 1]; a label of -100 is
 * ignored (loss masking: set prompt tokens to -100 to train on answers only). The loss of a step is
 * the mean over all its labelled tokens, whatever the micro-batching.
 *
 * Threads: a trainer is used by one thread at a time; the model it reads stays immutable and may
 * serve contexts on other threads meanwhile. Free every trainer before its model.
 */
#ifndef EUROLLM_EXPERIMENTAL_H
#define EUROLLM_EXPERIMENTAL_H

#include "eurollm.h"

#ifdef EUROLLM_EXPERIMENTAL

#ifdef __cplusplus
extern "C" {
#endif

typedef struct eurollm_trainer eurollm_trainer;

typedef enum eurollm_train_mode {
    EUROLLM_TRAIN_FULL = 0,  /**< every weight is trained (f32 master copies of the model's weights) */
    EUROLLM_TRAIN_LORA = 1   /**< LoRA adapters over the frozen base (read as stored: f32/f16/bf16) */
} eurollm_train_mode;

typedef enum eurollm_lr_schedule {
    EUROLLM_SCHEDULE_COSINE = 0,   /**< linear warmup, then cosine decay to min_lr_ratio * lr */
    EUROLLM_SCHEDULE_LINEAR = 1,   /**< linear warmup, then linear decay to min_lr_ratio * lr */
    EUROLLM_SCHEDULE_CONSTANT = 2  /**< linear warmup, then constant */
} eurollm_lr_schedule;

/** LoRA target projections, OR-ed together. */
#define EUROLLM_LORA_Q 1u
#define EUROLLM_LORA_K 2u
#define EUROLLM_LORA_V 4u
#define EUROLLM_LORA_O 8u
#define EUROLLM_LORA_GATE 16u
#define EUROLLM_LORA_UP 32u
#define EUROLLM_LORA_DOWN 64u
#define EUROLLM_LORA_ALL 127u

typedef struct eurollm_trainer_params {
    uint32_t version;                /**< EUROLLM_TRAINER_PARAMS_VERSION */
    eurollm_train_mode mode;         /**< default EUROLLM_TRAIN_LORA */
    int32_t lora_rank;               /**< default 8 */
    float lora_alpha;                /**< default 16; the update is scaled by alpha / rank */
    float lora_dropout;              /**< default 0; dropout on the adapter's input */
    uint32_t lora_targets;           /**< default EUROLLM_LORA_Q | EUROLLM_LORA_V */
    float lr;                        /**< peak learning rate; default 1e-4 */
    float beta1, beta2, eps;         /**< AdamW; defaults 0.9, 0.999, 1e-8 */
    float weight_decay;              /**< decoupled; default 0 (norms and biases never decay) */
    eurollm_lr_schedule schedule;    /**< default EUROLLM_SCHEDULE_COSINE */
    int32_t warmup_steps;            /**< default 0 */
    int32_t total_steps;             /**< schedule length; 0 = constant lr after warmup (default) */
    float min_lr_ratio;              /**< floor of the decay as a fraction of lr; default 0 */
    int32_t micro_batch;             /**< sequences per forward/backward (gradient accumulation); 0 = all */
    float max_grad_norm;             /**< global-norm clipping; default 1.0; 0 = off */
    uint64_t seed;                   /**< LoRA initialisation and dropout; default 0 */
    int32_t n_threads;               /**< CPU threads; 0 = one per core */
    /* version 2 */
    /**
     * Mixed precision; default EUROLLM_PRECISION_EXACT (float32 gradients, as autograd). BF16: the
     * products through the model's matrices take bf16 operands: activations and output gradients
     * are rounded to bf16, the frozen base is read as bf16 (an f32/f16 base is converted once, at
     * creation; a quantized one is unchanged) and full fine-tuning reads a bf16 copy of its
     * float32 master weights. About 1.7x EXACT on CPUs with AMX (Sapphire Rapids and later, where
     * EXACT's products through a bf16 base also use the tiles, with exact products), about twice
     * as fast with AVX512-BF16 alone, the same elsewhere. Master weights, LoRA
     * adapters (their small products stay float32), gradients and AdamW moments stay float32.
     * Not recorded in checkpoints: pass it again when resuming.
     */
    eurollm_precision precision;
    /* new fields are appended only, with a version bump */
} eurollm_trainer_params;
#define EUROLLM_TRAINER_PARAMS_VERSION 2

EUROLLM_API eurollm_status eurollm_trainer_params_init(eurollm_trainer_params *params, uint32_t version);

/**
 * @brief Create a trainer on a model. The model is never written (full fine-tuning trains f32
 * copies). @param params NULL for defaults. @param[out] out free with eurollm_trainer_free.
 */
EUROLLM_API eurollm_status eurollm_trainer_create(eurollm_model *model, const eurollm_trainer_params *params,
                                                  eurollm_trainer **out);
EUROLLM_API void eurollm_trainer_free(eurollm_trainer *trainer);

typedef struct eurollm_train_result {
    float loss;           /**< mean loss of the step's labelled tokens */
    float grad_norm;      /**< global gradient norm before clipping */
    float lr;             /**< learning rate used by this step */
    int64_t tokens;       /**< tokens processed (n_seqs * seq_len) */
    int64_t loss_tokens;  /**< tokens that carried a label */
    int64_t step;         /**< optimizer steps taken so far, this one included */
} eurollm_train_result;

/** @brief Called after each step; return false to ask the caller's loop to stop (the step stands). */
typedef bool (*eurollm_train_progress_cb)(const eurollm_train_result *result, void *user_data);
EUROLLM_API eurollm_status eurollm_trainer_set_progress(eurollm_trainer *trainer, eurollm_train_progress_cb cb,
                                                        void *user_data);

/**
 * @brief One optimizer step over a batch (see the top of this header for the layout).
 * @param[out] result may be NULL.
 * @return OK; ABORTED when the progress callback returned false (the step was taken);
 *         INVALID_ARGUMENT (bad ids, no label); GENERIC when the loss or the gradient is NaN/Inf:
 *         the step is skipped and the weights, moments and step count are unchanged.
 */
EUROLLM_API eurollm_status eurollm_trainer_step(eurollm_trainer *trainer, const int32_t *tokens,
                                                const int32_t *labels, size_t n_seqs, size_t seq_len,
                                                eurollm_train_result *result);
/** @brief Mean loss of a batch with the current weights (no dropout, no state change). */
EUROLLM_API eurollm_status eurollm_trainer_eval(eurollm_trainer *trainer, const int32_t *tokens,
                                                const int32_t *labels, size_t n_seqs, size_t seq_len, float *loss,
                                                int64_t *loss_tokens);
/**
 * @brief Forward and backward only: the gradients of the batch's mean loss are kept for
 * eurollm_trainer_get_tensor(..., EUROLLM_TENSOR_GRAD, ...); no update. @param[out] loss may be NULL.
 */
EUROLLM_API eurollm_status eurollm_trainer_compute_gradients(eurollm_trainer *trainer, const int32_t *tokens,
                                                             const int32_t *labels, size_t n_seqs, size_t seq_len,
                                                             float *loss);
/** @brief Logits of every position of one sequence with the trained weights: out holds n * n_vocab. */
EUROLLM_API eurollm_status eurollm_trainer_logits(eurollm_trainer *trainer, const int32_t *tokens, size_t n,
                                                  float *out, size_t cap);

/** Which array of a trainable tensor. */
typedef enum eurollm_tensor_part {
    EUROLLM_TENSOR_VALUE = 0,
    EUROLLM_TENSOR_GRAD = 1,
    EUROLLM_TENSOR_EXP_AVG = 2,     /**< AdamW first moment */
    EUROLLM_TENSOR_EXP_AVG_SQ = 3   /**< AdamW second moment */
} eurollm_tensor_part;

/** @brief Number of trainable tensors and their total element count (either may be NULL). */
EUROLLM_API eurollm_status eurollm_trainer_n_tensors(const eurollm_trainer *trainer, size_t *n_tensors,
                                                     int64_t *n_elements);
/**
 * @brief Name of trainable tensor i: the Hugging Face name (full) or PEFT's saved name (LoRA,
 * "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"). Borrowed from the trainer.
 */
EUROLLM_API const char *eurollm_trainer_tensor_name(const eurollm_trainer *trainer, size_t i);
/** @brief Copy one array of a tensor (f32) into out; BUFFER_TOO_SMALL reports the count in n_out. */
EUROLLM_API eurollm_status eurollm_trainer_get_tensor(const eurollm_trainer *trainer, const char *name,
                                                      eurollm_tensor_part part, float *out, size_t cap,
                                                      size_t *n_out);

/** @brief Steps taken so far (after a resume: the checkpoint's step). */
EUROLLM_API int64_t eurollm_trainer_step_count(const eurollm_trainer *trainer);
/** @brief The data loader's position, stored in checkpoints for the caller (opaque to the trainer). */
EUROLLM_API eurollm_status eurollm_trainer_set_data_position(eurollm_trainer *trainer, uint64_t epoch,
                                                             uint64_t offset, uint64_t seed);
EUROLLM_API eurollm_status eurollm_trainer_get_data_position(const eurollm_trainer *trainer, uint64_t *epoch,
                                                             uint64_t *offset, uint64_t *seed);

/**
 * @brief Write a checkpoint under dir/checkpoints/step-N (weights, AdamW moments, Protobuf
 * manifest with step, schedule, RNG state, data position, hyper-parameters and SHA-256 of each
 * file, and the manifest's own SHA-256 in manifest.sha256), atomically: a crash mid-save leaves
 * the previous checkpoint loadable. Keeps the last 2. Loading skips a checkpoint whose files or
 * manifest do not match their digests.
 */
EUROLLM_API eurollm_status eurollm_trainer_save_checkpoint(eurollm_trainer *trainer, const char *dir);
/**
 * @brief Resume from the latest valid checkpoint under dir/checkpoints: weights, moments, step,
 * RNG state and data position. The trainer must have the same mode and LoRA shape.
 * @return IO when there is none.
 */
EUROLLM_API eurollm_status eurollm_trainer_load_checkpoint(eurollm_trainer *trainer, const char *dir);

/** @brief Write the LoRA adapters as a PEFT adapter directory (adapter_config.json + adapter_model.safetensors). */
EUROLLM_API eurollm_status eurollm_trainer_export_peft(const eurollm_trainer *trainer, const char *dir);
/** @brief Set the LoRA adapters from a PEFT adapter directory (rank, alpha and targets must match). */
EUROLLM_API eurollm_status eurollm_trainer_load_peft(eurollm_trainer *trainer, const char *dir);
/**
 * @brief Write a model directory loadable by eurollm_model_load and transformers: the trained
 * weights (full) or the base with the adapters merged (LoRA), in the base's dtype (BF16 or F32).
 */
EUROLLM_API eurollm_status eurollm_trainer_save_model(const eurollm_trainer *trainer, const char *dir);

/**
 * @brief Merge a PEFT LoRA adapter into a base model directory at `scale` (1 = as trained) and
 * write the result as a new model directory.
 */
EUROLLM_API eurollm_status eurollm_adapter_merge(const char *base_dir, const char *adapter_dir, float scale,
                                                 const char *out_dir);
/**
 * @brief Load a model with a PEFT adapter applied at `scale` (the adapter is merged in memory;
 * 0 gives the base). The result is an ordinary model for contexts and generators.
 */
EUROLLM_API eurollm_status eurollm_model_load_with_adapter(const char *path, const char *adapter_dir, float scale,
                                                           const eurollm_model_params *params, eurollm_model **out);

/* ---------------------------------------------------------------------------------------------
 * Datasets: JSONL packed into fixed-length sequences
 * ------------------------------------------------------------------------------------------- */

/**
 * A tokenized, packed training set. Lines of the JSONL file are objects with "text" (plain text:
 * BOS + text + EOS, every token trained), "messages" (a conversation rendered with the model's
 * chat template, ChatML if it has none; only assistant turns are trained) or "tokens" (+ optional
 * "labels") of ids. Documents are concatenated and cut into sequences of seq_len. Independent of
 * the model once loaded.
 */
typedef struct eurollm_dataset eurollm_dataset;

EUROLLM_API eurollm_status eurollm_dataset_load(const eurollm_model *model, const char *jsonl_path, size_t seq_len,
                                                eurollm_dataset **out);
EUROLLM_API void eurollm_dataset_free(eurollm_dataset *dataset);
/** @brief Sequences in the dataset (0 for an invalid handle). */
EUROLLM_API size_t eurollm_dataset_n_sequences(const eurollm_dataset *dataset);
/** @brief Move the last n sequences into a new dataset (a held-out split). */
EUROLLM_API eurollm_status eurollm_dataset_split(eurollm_dataset *dataset, size_t n, eurollm_dataset **heldout_out);
/**
 * @brief Copy sequences [first, first + n_seqs) of the order of `epoch` (a permutation drawn from
 * seed and epoch; seed 0 with shuffle false = file order) into tokens and labels
 * (n_seqs * seq_len each).
 */
EUROLLM_API eurollm_status eurollm_dataset_get(const eurollm_dataset *dataset, uint64_t seed, uint64_t epoch,
                                               bool shuffle, size_t first, size_t n_seqs, int32_t *tokens,
                                               int32_t *labels);

/**
 * @brief Fill params with the mode, LoRA shape, hyper-parameters and precision recorded in the
 * latest valid checkpoint under dir/checkpoints (n_threads is left as it was; a checkpoint written
 * before precision was recorded reads as EUROLLM_PRECISION_EXACT). IO when there is none.
 */
EUROLLM_API eurollm_status eurollm_trainer_params_from_checkpoint(const char *dir, eurollm_trainer_params *params);

#ifdef __cplusplus
}
#endif

#endif /* EUROLLM_EXPERIMENTAL */
#endif /* EUROLLM_EXPERIMENTAL_H */
