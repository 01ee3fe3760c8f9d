/*
 * eurollm_reference -- the independent reference of the Java tests: a plain C99 client of
 * capi/eurollm.h (no Java, no JNI, no SWIG). The tests run it as a subprocess and compare its
 * output byte for byte with what the Java binding returns for the same request.
 *
 *   eurollm_reference info MODEL
 *       key=value lines: n_vocab, n_embd, n_layer, bos_id, eos_id, architecture, eos_ids, ...
 *   eurollm_reference tokenize MODEL HEX_TEXT FLAGS
 *       the ids of the text (given as hex-encoded UTF-8, so any text survives argv), one line
 *   eurollm_reference detokenize MODEL ID...
 *       the raw UTF-8 bytes on stdout, nothing else
 *   eurollm_reference pieces MODEL ID...
 *       the vocabulary piece of each id, hex-encoded, one line each
 *   eurollm_reference embed MODEL POOLING NORMALIZE DIM HEX_TEXT...
 *       "rows dim", then one line per row of C99 hex floats (%a: exact)
 *   eurollm_reference train MODEL MODE STEPS LR SEED SEQ_LEN HEX_TEXT   (when built with the
 *       experimental header) a batch of 2 x SEQ_LEN tokens of the text, labels = tokens; prints
 *       per step "loss grad_norm lr tokens loss_tokens step" (%a floats), then "eval LOSS N",
 *       "tensors N ELEMENTS" and the first tensor's name
 *   eurollm_reference generate MODEL [options]
 *       the generated text (raw bytes) on stdout. Options:
 *       --prompt-hex HEX  -n N  --temp T  --top-k K  --top-p P  --min-p P  --repeat-penalty R
 *       --seed S  --ignore-eos  --stop-hex HEX (repeatable)  --threads N
 *       Without --stop-hex it calls eurollm_generate_text (the one-call path); with stop strings
 *       it runs the eurollm_generator_* loop of the header's usage example.
 *
 * Errors: the message of eurollm_last_error() on stderr and exit status 1 (2 for bad usage).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eurollm.h"
#ifdef EUROLLM_HAVE_EXPERIMENTAL_H
#define EUROLLM_EXPERIMENTAL
#include "eurollm_experimental.h"
#endif

static int fail(const char *what, eurollm_status st) {
    fprintf(stderr, "eurollm_reference: %s: %s (%s)\n", what, eurollm_last_error(), eurollm_status_string(st));
    return 1;
}

static int usage(const char *msg) {
    fprintf(stderr, "eurollm_reference: %s\n", msg);
    return 2;
}

/* Decodes hex into a malloc'd buffer; *len gets the byte count. NULL on bad hex. */
static char *from_hex(const char *hex, size_t *len) {
    size_t n = strlen(hex), i;
    char *out;
    if (n % 2) return NULL;
    out = (char *)malloc(n / 2 + 1);
    if (!out) return NULL;
    for (i = 0; i < n / 2; ++i) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (char)v;
    }
    out[n / 2] = '\0';
    *len = n / 2;
    return out;
}

static int load(const char *path, eurollm_model **model) {
    eurollm_status st = eurollm_model_load(path, NULL, model);
    return st == EUROLLM_OK ? 0 : fail("eurollm_model_load", st);
}

static int cmd_info(eurollm_model *model) {
    static const struct {
        const char *name;
        eurollm_model_info key;
    } keys[] = {
        {"n_vocab", EUROLLM_INFO_N_VOCAB},   {"n_embd", EUROLLM_INFO_N_EMBD},
        {"n_layer", EUROLLM_INFO_N_LAYER},   {"n_head", EUROLLM_INFO_N_HEAD},
        {"n_head_kv", EUROLLM_INFO_N_HEAD_KV}, {"head_dim", EUROLLM_INFO_HEAD_DIM},
        {"n_ff", EUROLLM_INFO_N_FF},         {"n_ctx_train", EUROLLM_INFO_N_CTX_TRAIN},
        {"bos_id", EUROLLM_INFO_BOS_ID},     {"eos_id", EUROLLM_INFO_EOS_ID},
        {"pad_id", EUROLLM_INFO_PAD_ID},     {"n_params", EUROLLM_INFO_N_PARAMS},
        {"sliding_window", EUROLLM_INFO_SLIDING_WINDOW}, {"tied_embeddings", EUROLLM_INFO_TIED_EMBEDDINGS},
    };
    size_t i, n = 0;
    int32_t ids[64];
    eurollm_status st;
    for (i = 0; i < sizeof keys / sizeof keys[0]; ++i) {
        int64_t v = 0;
        st = eurollm_model_get_info(model, keys[i].key, &v);
        if (st != EUROLLM_OK) return fail("eurollm_model_get_info", st);
        printf("%s=%lld\n", keys[i].name, (long long)v);
    }
    printf("architecture=%s\n", eurollm_model_architecture(model));
    printf("has_chat_template=%d\n", eurollm_model_chat_template(model) != NULL);
    st = eurollm_model_eos_ids(model, ids, 64, &n);
    if (st != EUROLLM_OK) return fail("eurollm_model_eos_ids", st);
    printf("eos_ids=");
    for (i = 0; i < n; ++i) printf(i ? ",%d" : "%d", ids[i]);
    printf("\nversion=%s\n", eurollm_version_string());
    return 0;
}

static int cmd_tokenize(eurollm_model *model, const char *hex, const char *flags_arg) {
    size_t len = 0, n = 0, i;
    char *text = from_hex(hex, &len);
    unsigned flags = (unsigned)strtoul(flags_arg, NULL, 10);
    int32_t *ids;
    eurollm_status st;
    if (!text) return usage("bad hex text");
    st = eurollm_tokenize(model, text, len, flags, NULL, 0, &n);
    if (st != EUROLLM_OK && st != EUROLLM_ERR_BUFFER_TOO_SMALL) return fail("eurollm_tokenize", st);
    ids = (int32_t *)malloc((n + 1) * sizeof *ids);
    st = eurollm_tokenize(model, text, len, flags, ids, n + 1, &n);
    if (st != EUROLLM_OK) return fail("eurollm_tokenize", st);
    for (i = 0; i < n; ++i) printf(i ? " %d" : "%d", ids[i]);
    printf("\n");
    free(ids);
    free(text);
    return 0;
}

static int cmd_detokenize(eurollm_model *model, int argc, char **argv) {
    int32_t *ids = (int32_t *)malloc(((size_t)argc + 1) * sizeof *ids);
    size_t len = 0;
    char *text;
    int i;
    eurollm_status st;
    for (i = 0; i < argc; ++i) ids[i] = (int32_t)strtol(argv[i], NULL, 10);
    st = eurollm_detokenize(model, ids, (size_t)argc, NULL, 0, &len);
    if (st != EUROLLM_OK && st != EUROLLM_ERR_BUFFER_TOO_SMALL) return fail("eurollm_detokenize", st);
    text = (char *)malloc(len + 1);
    st = eurollm_detokenize(model, ids, (size_t)argc, text, len + 1, &len);
    if (st != EUROLLM_OK) return fail("eurollm_detokenize", st);
    fwrite(text, 1, len, stdout);
    free(text);
    free(ids);
    return 0;
}

static int cmd_pieces(eurollm_model *model, int argc, char **argv) {
    int i;
    for (i = 0; i < argc; ++i) {
        char buf[256];
        size_t len = 0, j;
        eurollm_status st = eurollm_token_to_piece(model, (int32_t)strtol(argv[i], NULL, 10), buf, sizeof buf, &len);
        if (st != EUROLLM_OK) return fail("eurollm_token_to_piece", st);
        for (j = 0; j < len; ++j) printf("%02x", (unsigned char)buf[j]);
        printf("\n");
    }
    return 0;
}

static int cmd_embed(eurollm_model *model, int argc, char **argv) {
    eurollm_context *ctx = NULL;
    eurollm_embed_params ep;
    char **texts;
    size_t *lens, rows = 0, dim = 0, r, c;
    float *out;
    int i, n;
    eurollm_status st;
    if (argc < 3) return usage("embed needs POOLING NORMALIZE DIM");
    n = argc - 3;
    eurollm_embed_params_init(&ep, EUROLLM_EMBED_PARAMS_VERSION);
    ep.pooling = (eurollm_pooling)atoi(argv[0]);
    ep.normalize = atoi(argv[1]) != 0;
    ep.dim = (uint32_t)strtoul(argv[2], NULL, 10);
    texts = (char **)calloc((size_t)n + 1, sizeof *texts);
    lens = (size_t *)calloc((size_t)n + 1, sizeof *lens);
    for (i = 0; i < n; ++i) {
        texts[i] = from_hex(argv[3 + i], &lens[i]);
        if (!texts[i]) return usage("bad hex text");
    }
    st = eurollm_context_init(model, NULL, &ctx);
    if (st != EUROLLM_OK) return fail("eurollm_context_init", st);
    st = eurollm_embed_texts(ctx, (const char *const *)texts, lens, (size_t)n, &ep, NULL, 0, &rows, &dim);
    if (st != EUROLLM_OK && st != EUROLLM_ERR_BUFFER_TOO_SMALL) return fail("eurollm_embed_texts", st);
    out = (float *)malloc((rows * dim + 1) * sizeof *out);
    st = eurollm_embed_texts(ctx, (const char *const *)texts, lens, (size_t)n, &ep, out, rows * dim, &rows, &dim);
    if (st != EUROLLM_OK) return fail("eurollm_embed_texts", st);
    printf("%zu %zu\n", rows, dim);
    for (r = 0; r < rows; ++r) {
        for (c = 0; c < dim; ++c) printf(c ? " %a" : "%a", (double)out[r * dim + c]);
        printf("\n");
    }
    free(out);
    for (i = 0; i < n; ++i) free(texts[i]);
    free(texts);
    free(lens);
    eurollm_context_free(ctx);
    return 0;
}

#ifdef EUROLLM_HAVE_EXPERIMENTAL_H
static int cmd_train(eurollm_model *model, int argc, char **argv) {
    eurollm_trainer_params tp;
    eurollm_trainer *tr = NULL;
    eurollm_train_result r;
    int32_t ids[4096];
    size_t n_ids = 0, len = 0, seq_len, n_tensors = 0;
    int64_t n_elements = 0, loss_tokens = 0;
    float loss = 0;
    char *text;
    int steps, i;
    eurollm_status st;
    if (argc != 6) return usage("train needs MODE STEPS LR SEED SEQ_LEN HEX_TEXT");
    eurollm_trainer_params_init(&tp, EUROLLM_TRAINER_PARAMS_VERSION);
    tp.mode = (eurollm_train_mode)atoi(argv[0]);
    steps = atoi(argv[1]);
    tp.lr = strtof(argv[2], NULL);
    tp.seed = (uint64_t)strtoull(argv[3], NULL, 10);
    seq_len = (size_t)strtoul(argv[4], NULL, 10);
    tp.lora_rank = 4;
    tp.warmup_steps = 1;
    tp.total_steps = steps;
    tp.n_threads = 1;
    text = from_hex(argv[5], &len);
    if (!text) return usage("bad hex text");
    st = eurollm_tokenize(model, text, len, EUROLLM_TOKENIZE_MODEL_DEFAULT, ids, 4096, &n_ids);
    if (st != EUROLLM_OK) return fail("eurollm_tokenize", st);
    if (n_ids < 2 * seq_len) return usage("text too short for the batch");
    st = eurollm_trainer_create(model, &tp, &tr);
    if (st != EUROLLM_OK) return fail("eurollm_trainer_create", st);
    for (i = 0; i < steps; ++i) {
        st = eurollm_trainer_step(tr, ids, ids, 2, seq_len, &r);
        if (st != EUROLLM_OK) return fail("eurollm_trainer_step", st);
        printf("%a %a %a %lld %lld %lld\n", (double)r.loss, (double)r.grad_norm, (double)r.lr, (long long)r.tokens,
               (long long)r.loss_tokens, (long long)r.step);
    }
    st = eurollm_trainer_eval(tr, ids, ids, 2, seq_len, &loss, &loss_tokens);
    if (st != EUROLLM_OK) return fail("eurollm_trainer_eval", st);
    printf("eval %a %lld\n", (double)loss, (long long)loss_tokens);
    st = eurollm_trainer_n_tensors(tr, &n_tensors, &n_elements);
    if (st != EUROLLM_OK) return fail("eurollm_trainer_n_tensors", st);
    printf("tensors %zu %lld\n%s\n", n_tensors, (long long)n_elements, eurollm_trainer_tensor_name(tr, 0));
    eurollm_trainer_free(tr);
    free(text);
    return 0;
}
#endif

static int cmd_generate(eurollm_model *model, int argc, char **argv) {
    eurollm_context_params cp;
    eurollm_generator_params gp;
    eurollm_context *ctx = NULL;
    char *prompt = NULL;
    size_t prompt_len = 0;
    char *stops[16];
    size_t stop_lens[16];
    int n_stops = 0, i, rc = 0;
    eurollm_status st;

    eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION);
    eurollm_generator_params_init(&gp, EUROLLM_GENERATOR_PARAMS_VERSION);
    for (i = 0; i < argc; ++i) {
        const char *opt = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(opt, "--ignore-eos")) {
            gp.ignore_eos = true;
            continue;
        }
        if (!val) return usage("option needs a value");
        ++i;
        if (!strcmp(opt, "--prompt-hex")) {
            prompt = from_hex(val, &prompt_len);
            if (!prompt) return usage("bad hex prompt");
        } else if (!strcmp(opt, "--stop-hex")) {
            if (n_stops == 16) return usage("too many stop strings");
            stops[n_stops] = from_hex(val, &stop_lens[n_stops]);
            if (!stops[n_stops]) return usage("bad hex stop string");
            ++n_stops;
        } else if (!strcmp(opt, "-n")) gp.max_tokens = (int32_t)strtol(val, NULL, 10);
        else if (!strcmp(opt, "--temp")) gp.temperature = strtof(val, NULL);
        else if (!strcmp(opt, "--top-k")) gp.top_k = (int32_t)strtol(val, NULL, 10);
        else if (!strcmp(opt, "--top-p")) gp.top_p = strtof(val, NULL);
        else if (!strcmp(opt, "--min-p")) gp.min_p = strtof(val, NULL);
        else if (!strcmp(opt, "--repeat-penalty")) gp.repetition_penalty = strtof(val, NULL);
        else if (!strcmp(opt, "--seed")) gp.seed = (uint64_t)strtoull(val, NULL, 10);
        else if (!strcmp(opt, "--threads")) cp.n_threads = (int32_t)strtol(val, NULL, 10);
        else return usage("unknown option");
    }
    st = eurollm_context_init(model, &cp, &ctx);
    if (st != EUROLLM_OK) return fail("eurollm_context_init", st);

    if (n_stops == 0) {
        /* One call; ask for the size first is impossible (the generation would be lost), so size
         * generously and retry once with the reported length. */
        size_t cap = 1 << 16, len = 0;
        char *text = (char *)malloc(cap);
        st = eurollm_generate_text(ctx, prompt ? prompt : "", prompt_len, &gp, text, cap, &len);
        if (st == EUROLLM_ERR_BUFFER_TOO_SMALL) {
            free(text);
            cap = len + 1;
            text = (char *)malloc(cap);
            st = eurollm_context_reset(ctx);
            if (st == EUROLLM_OK) st = eurollm_generate_text(ctx, prompt ? prompt : "", prompt_len, &gp, text, cap, &len);
        }
        if (st != EUROLLM_OK) rc = fail("eurollm_generate_text", st);
        else fwrite(text, 1, len, stdout);
        free(text);
    } else {
        eurollm_generator *gen = NULL;
        int32_t ids[4096];
        size_t n_ids = 0;
        int32_t tok;
        const char *delta;
        size_t delta_len;
        st = eurollm_tokenize(model, prompt ? prompt : "", prompt_len, EUROLLM_TOKENIZE_MODEL_DEFAULT, ids, 4096, &n_ids);
        if (st != EUROLLM_OK) return fail("eurollm_tokenize", st);
        st = eurollm_generator_init(ctx, &gp, &gen);
        if (st != EUROLLM_OK) return fail("eurollm_generator_init", st);
        for (i = 0; i < n_stops; ++i) {
            st = eurollm_generator_add_stop_string(gen, stops[i], stop_lens[i]);
            if (st != EUROLLM_OK) return fail("eurollm_generator_add_stop_string", st);
        }
        st = eurollm_generator_append_tokens(gen, ids, n_ids);
        if (st != EUROLLM_OK) return fail("eurollm_generator_append_tokens", st);
        while ((st = eurollm_generator_step(gen, &tok)) == EUROLLM_OK) {
            eurollm_generator_text_delta(gen, &delta, &delta_len);
            fwrite(delta, 1, delta_len, stdout);
        }
        if (st != EUROLLM_DONE) {
            rc = fail("eurollm_generator_step", st);
        } else {
            eurollm_generator_text_delta(gen, &delta, &delta_len); /* text released at the end */
            fwrite(delta, 1, delta_len, stdout);
        }
        eurollm_generator_free(gen);
    }
    for (i = 0; i < n_stops; ++i) free(stops[i]);
    free(prompt);
    eurollm_context_free(ctx);
    return rc;
}

int main(int argc, char **argv) {
    eurollm_model *model = NULL;
    int rc;
    if (argc < 3) return usage("usage: eurollm_reference info|tokenize|detokenize|pieces|embed|generate MODEL ...");
    if (load(argv[2], &model)) return 1;
    if (!strcmp(argv[1], "info")) rc = cmd_info(model);
    else if (!strcmp(argv[1], "tokenize") && argc == 5) rc = cmd_tokenize(model, argv[3], argv[4]);
    else if (!strcmp(argv[1], "detokenize")) rc = cmd_detokenize(model, argc - 3, argv + 3);
    else if (!strcmp(argv[1], "pieces")) rc = cmd_pieces(model, argc - 3, argv + 3);
    else if (!strcmp(argv[1], "embed")) rc = cmd_embed(model, argc - 3, argv + 3);
    else if (!strcmp(argv[1], "generate")) rc = cmd_generate(model, argc - 3, argv + 3);
#ifdef EUROLLM_HAVE_EXPERIMENTAL_H
    else if (!strcmp(argv[1], "train")) rc = cmd_train(model, argc - 3, argv + 3);
#endif
    else rc = usage("unknown command or wrong arguments");
    eurollm_model_free(model);
    fflush(stdout);
    return rc;
}
