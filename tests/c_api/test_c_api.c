/* Strict C99 lifecycle test: load, tokenize, generate (streaming), detokenize, free; every status
 * is checked. Exit 77 (skipped) when the fixture model is absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eurollm.h"

static int failures = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s (last error: %s)\n", __FILE__,  \
                    __LINE__, #cond, eurollm_last_error());                          \
            ++failures;                                                              \
        }                                                                            \
    } while (0)

struct stream_state {
    char text[4096];
    size_t len;
    int calls;
};

static bool on_token(int32_t token, const char *text, size_t text_len, void *user_data) {
    struct stream_state *s = (struct stream_state *)user_data;
    (void)token;
    if (s->len + text_len < sizeof s->text) {
        memcpy(s->text + s->len, text, text_len);
        s->len += text_len;
        s->text[s->len] = '\0';
    }
    ++s->calls;
    return true;
}

int main(int argc, char **argv) {
    const char *path = argc > 1 ? argv[1] : "../shared/models/stories260K";
    char config[1024];
    FILE *probe;
    eurollm_model_params mp;
    eurollm_context_params cp;
    eurollm_generator_params gp;
    eurollm_model *model = NULL;
    eurollm_model *other = NULL;
    eurollm_context *ctx = NULL;
    eurollm_generator *gen = NULL;
    int32_t prompt[64];
    size_t n_prompt = 0;
    int64_t n_vocab = 0;
    int32_t tok = -1;
    eurollm_status st;
    struct stream_state stream;
    char text[4096];
    size_t text_len = 0;
    int32_t generated[64];
    size_t n_generated = 0;

    snprintf(config, sizeof config, "%s/config.json", path);
    probe = fopen(config, "r");
    if (!probe) {
        printf("SKIPPED: no model at %s\n", path);
        return 77;
    }
    fclose(probe);

    CHECK(eurollm_version_number() == EUROLLM_VERSION_NUMBER);
    CHECK(strcmp(eurollm_version_string(), EUROLLM_VERSION_STRING) == 0);
    CHECK(eurollm_device_count(EUROLLM_DEVICE_CPU) == 1);

    CHECK(eurollm_model_params_init(&mp, EUROLLM_MODEL_PARAMS_VERSION) == EUROLLM_OK);
    CHECK(eurollm_model_load(path, &mp, &model) == EUROLLM_OK);
    if (!model) return 1;
    CHECK(eurollm_model_get_info(model, EUROLLM_INFO_N_VOCAB, &n_vocab) == EUROLLM_OK);
    CHECK(n_vocab == 512);
    CHECK(strcmp(eurollm_model_architecture(model), "llama") == 0);

    CHECK(eurollm_tokenize(model, "Once upon a time", 16, EUROLLM_TOKENIZE_ADD_BOS, prompt, 64, &n_prompt) ==
          EUROLLM_OK);
    CHECK(n_prompt > 1 && prompt[0] == 1);

    CHECK(eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION) == EUROLLM_OK);
    cp.n_ctx = 256;
    cp.n_threads = 2;
    CHECK(eurollm_context_init(model, &cp, &ctx) == EUROLLM_OK);
    CHECK(eurollm_context_n_ctx(ctx) == 256);

    CHECK(eurollm_generator_params_init(&gp, EUROLLM_GENERATOR_PARAMS_VERSION) == EUROLLM_OK);
    gp.temperature = 0.0f;
    gp.max_tokens = 32;
    CHECK(eurollm_generator_init(ctx, &gp, &gen) == EUROLLM_OK);
    memset(&stream, 0, sizeof stream);
    CHECK(eurollm_generator_set_callback(gen, on_token, &stream) == EUROLLM_OK);
    CHECK(eurollm_generator_append_tokens(gen, prompt, n_prompt) == EUROLLM_OK);
    while ((st = eurollm_generator_step(gen, &tok)) == EUROLLM_OK) {
        CHECK(tok >= 0 && tok < n_vocab);
        if (n_generated < 64) generated[n_generated++] = tok;
    }
    CHECK(st == EUROLLM_DONE);
    CHECK(eurollm_generator_stop_reason(gen) == EUROLLM_STOP_MAX_TOKENS);
    CHECK(n_generated == 32);
    CHECK(eurollm_generator_n_generated(gen) == 32);
    CHECK(stream.calls == 32);

    /* The streamed text equals the detokenized tokens (the prompt ends in a word, so the first
     * generated piece keeps its leading space in the stream but not in a standalone decode). */
    CHECK(eurollm_detokenize(model, generated, n_generated, text, sizeof text, &text_len) == EUROLLM_OK);
    CHECK(text_len > 0);
    CHECK(stream.len >= text_len && strcmp(stream.text + (stream.len - text_len), text) == 0);
    printf("generated:%s\n", stream.text);

    /* A caller buffer that is too small reports the needed size. */
    CHECK(eurollm_detokenize(model, generated, n_generated, text, 4, &text_len) == EUROLLM_ERR_BUFFER_TOO_SMALL);
    CHECK(text_len > 4);
    CHECK(strlen(eurollm_last_error()) > 0);

    /* Misuse is a status, never a crash. */
    CHECK(eurollm_generator_step(NULL, &tok) == EUROLLM_ERR_INVALID_ARGUMENT);
    CHECK(eurollm_model_load(NULL, &mp, &other) == EUROLLM_ERR_INVALID_ARGUMENT);
    CHECK(other == NULL);

    eurollm_generator_free(gen);
    eurollm_generator_free(NULL);
    eurollm_context_free(ctx);
    eurollm_context_free(NULL);
    eurollm_model_free(model);
    eurollm_model_free(NULL);

    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("c_api lifecycle: all checks passed\n");
    return 0;
}
