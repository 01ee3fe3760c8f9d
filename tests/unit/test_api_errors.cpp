// Bad input through the public API: every case gets a specific status and a message naming the
// problem, and nothing crashes (the suite also runs under ASan/UBSan in CI).
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fixtures.h"
#include "eurollm.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string read_file(const fs::path &p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_file(const fs::path &p, const std::string &bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A safetensors file split into its JSON header and data, so a test can corrupt either.
struct safetensors_parts {
    json header;
    std::string data;

    static safetensors_parts read(const fs::path &p) {
        const std::string bytes = read_file(p);
        uint64_t n = 0;
        for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<size_t>(i)]);
        return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
    }
    std::string bytes() const { return with_header(header.dump()); }
    std::string with_header(const std::string &h) const {
        std::string out(8, '\0');
        uint64_t n = h.size();
        for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
        return out + h + data;
    }
};

class ApiErrors : public ::testing::Test {
protected:
    void SetUp() override {
        EUROLLM_REQUIRE_STORIES();
        dir_ = fs::temp_directory_path() / ("eurollm-bad-" + std::to_string(::getpid()) + "-" +
                                            ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
        for (const char *f : {"config.json", "generation_config.json", "tokenizer_config.json", "tokenizer.model",
                              "model.safetensors"})
            fs::copy_file(fs::path(eurollm_test::stories_dir()) / f, dir_ / f);
    }
    void TearDown() override {
        if (!dir_.empty()) fs::remove_all(dir_);
    }

    // Loads dir_ and expects `want`, with a message containing `needle`.
    void expect_load_error(eurollm_status want, const std::string &needle) {
        eurollm_model *m = reinterpret_cast<eurollm_model *>(0x1);
        const eurollm_status st = eurollm_model_load(dir_.c_str(), nullptr, &m);
        EXPECT_EQ(st, want) << eurollm_last_error();
        EXPECT_EQ(m, nullptr);
        EXPECT_NE(std::string(eurollm_last_error()).find(needle), std::string::npos)
            << "message was: " << eurollm_last_error();
        eurollm_model_free(m);
    }

    safetensors_parts weights() { return safetensors_parts::read(dir_ / "model.safetensors"); }
    void set_weights(const std::string &bytes) { write_file(dir_ / "model.safetensors", bytes); }

    fs::path dir_;
};

TEST_F(ApiErrors, MissingDirectory) {
    dir_ /= "does-not-exist";
    expect_load_error(EUROLLM_ERR_IO, "does-not-exist");
}

TEST_F(ApiErrors, MissingConfig) {
    fs::remove(dir_ / "config.json");
    expect_load_error(EUROLLM_ERR_IO, "config.json");
}

TEST_F(ApiErrors, MalformedConfigJson) {
    write_file(dir_ / "config.json", "{\"model_type\": \"llama\", \"hidden_size\": ");
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "config.json");
}

TEST_F(ApiErrors, ConfigMissingField) {
    json cfg = json::parse(read_file(dir_ / "config.json"));
    cfg.erase("hidden_size");
    write_file(dir_ / "config.json", cfg.dump());
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "hidden_size");
}

TEST_F(ApiErrors, UnsupportedArchitecture) {
    json cfg = json::parse(read_file(dir_ / "config.json"));
    cfg["model_type"] = "gpt2";
    write_file(dir_ / "config.json", cfg.dump());
    expect_load_error(EUROLLM_ERR_UNSUPPORTED, "gpt2");
}

TEST_F(ApiErrors, TruncatedFile) {
    const std::string bytes = read_file(dir_ / "model.safetensors");
    set_weights(bytes.substr(0, 5));
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "truncated");
}

TEST_F(ApiErrors, TruncatedData) {
    const std::string bytes = read_file(dir_ / "model.safetensors");
    set_weights(bytes.substr(0, bytes.size() - 1000));
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "outside");
}

TEST_F(ApiErrors, HeaderLengthPastEnd) {
    std::string bytes = read_file(dir_ / "model.safetensors");
    bytes[6] = 0x7f;  // header length ~ 2^55
    set_weights(bytes);
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "header length");
}

TEST_F(ApiErrors, MalformedHeaderJson) {
    auto w = weights();
    std::string h = w.header.dump();
    h.back() = ' ';  // the closing brace is gone: the JSON is cut short
    set_weights(w.with_header(h));
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "malformed safetensors header");
}

TEST_F(ApiErrors, OffsetsOutsideFile) {
    auto w = weights();
    auto &off = w.header["model.norm.weight"]["data_offsets"];
    const uint64_t len = off[1].get<uint64_t>() - off[0].get<uint64_t>();
    off[0] = w.data.size();
    off[1] = w.data.size() + len;
    set_weights(w.bytes());
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "model.norm.weight");
}

TEST_F(ApiErrors, OverlappingTensors) {
    auto w = weights();
    // Point the final norm at the first bytes of the embedding table.
    const uint64_t begin = w.header["model.embed_tokens.weight"]["data_offsets"][0];
    w.header["model.norm.weight"]["data_offsets"] = {begin, begin + 64 * 4};
    set_weights(w.bytes());
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "overlap");
}

TEST_F(ApiErrors, ShapeDisagreesWithConfig) {
    json cfg = json::parse(read_file(dir_ / "config.json"));
    cfg["intermediate_size"] = 128;
    write_file(dir_ / "config.json", cfg.dump());
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "gate_proj");
}

TEST_F(ApiErrors, SizeDisagreesWithShape) {
    auto w = weights();
    w.header["model.norm.weight"]["shape"] = {32};
    set_weights(w.bytes());
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "model.norm.weight");
}

TEST_F(ApiErrors, UnsupportedDtype) {
    auto w = weights();
    w.header["model.norm.weight"]["dtype"] = "I32";  // same byte size, wrong kind
    set_weights(w.bytes());
    expect_load_error(EUROLLM_ERR_UNSUPPORTED, "I32");
}

TEST_F(ApiErrors, MissingTensor) {
    auto w = weights();
    w.header.erase("model.layers.3.mlp.up_proj.weight");
    set_weights(w.bytes());
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "model.layers.3.mlp.up_proj.weight");
}

TEST_F(ApiErrors, MissingShard) {
    json index = {{"metadata", json::object()},
                  {"weight_map", {{"model.embed_tokens.weight", "model-00001-of-00002.safetensors"},
                                  {"model.norm.weight", "model-00002-of-00002.safetensors"}}}};
    fs::rename(dir_ / "model.safetensors", dir_ / "model-00001-of-00002.safetensors");
    write_file(dir_ / "model.safetensors.index.json", index.dump());
    expect_load_error(EUROLLM_ERR_IO, "model-00002-of-00002.safetensors");
}

TEST_F(ApiErrors, MalformedShardIndex) {
    write_file(dir_ / "model.safetensors.index.json", "{\"weight_map\": [1, 2]}");
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "weight_map");
}

TEST_F(ApiErrors, EmptyWeightsFile) {
    set_weights("");
    expect_load_error(EUROLLM_ERR_BAD_MODEL, "truncated");
}

// Random corruption of each file of a model directory (the safetensors header more than its data,
// config.json, tokenizer.model, tokenizer_config.json): a load either fails with a status and a
// message, or gives a model that generates a few tokens. Never a crash; the sanitizer builds check
// the reads. Seeded: a failure names the file and iteration, which reproduce.
TEST_F(ApiErrors, RandomlyCorruptedFilesFailCleanlyOrWork) {
    std::mt19937_64 rng(20261206);
    int refused = 0, loaded = 0;
    for (const char *name : {"model.safetensors", "config.json", "tokenizer.model", "tokenizer_config.json"}) {
        const std::string good = read_file(dir_ / name);
        ASSERT_FALSE(good.empty()) << name;
        // The safetensors header (8-byte length + JSON) is where the parser decides.
        const size_t head = std::string(name) == "model.safetensors" ? 8 + weights().header.dump().size() + 64
                                                                     : good.size();
        for (int it = 0; it < 60; ++it) {
            std::string b = good;
            const int edits = 1 + static_cast<int>(rng() % 3);
            for (int e = 0; e < edits; ++e) {
                const size_t at = static_cast<size_t>(rng() % std::min(head, b.size()));
                switch (rng() % 3) {
                case 0: b[at] = static_cast<char>(rng()); break;
                case 1: b[at] = static_cast<char>(b[at] ^ (1 << (rng() % 8))); break;
                default: b[at] = static_cast<char>(rng() % 2 ? 0xff : 0x00); break;
                }
            }
            write_file(dir_ / name, b);
            eurollm_model *m = nullptr;
            const eurollm_status st = eurollm_model_load(dir_.c_str(), nullptr, &m);
            if (st != EUROLLM_OK) {
                ++refused;
                EXPECT_EQ(m, nullptr);
                EXPECT_STRNE(eurollm_last_error(), "") << name << " iteration " << it;
                continue;
            }
            ++loaded;
            eurollm_context_params cp;
            eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION);
            cp.n_ctx = 64;
            cp.n_threads = 1;
            eurollm_context *ctx = nullptr;
            if (eurollm_context_init(m, &cp, &ctx) == EUROLLM_OK) {
                eurollm_generator_params gp;
                eurollm_generator_params_init(&gp, EUROLLM_GENERATOR_PARAMS_VERSION);
                gp.max_tokens = 4;
                char text[256];
                size_t len = 0;
                const eurollm_status g = eurollm_generate_text(ctx, "Once upon a time", 16, &gp, text, sizeof text, &len);
                if (g != EUROLLM_OK) {
                    EXPECT_STRNE(eurollm_last_error(), "") << name << " iteration " << it;
                }
                eurollm_context_free(ctx);
            }
            eurollm_model_free(m);
        }
        write_file(dir_ / name, good);
    }
    std::printf("[ fuzz     ] %d corrupted directories refused, %d loaded and generated\n", refused, loaded);
    EXPECT_GT(refused, 40) << "the corruption should hit the loaders' checks";
}

// ---- misuse of a loaded model ----

class ApiMisuse : public ::testing::Test {
protected:
    void SetUp() override {
        EUROLLM_REQUIRE_STORIES();
        ASSERT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), nullptr, &model_), EUROLLM_OK)
            << eurollm_last_error();
        eurollm_context_params cp;
        eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION);
        cp.n_ctx = 32;
        cp.n_threads = 1;
        ASSERT_EQ(eurollm_context_init(model_, &cp, &ctx_), EUROLLM_OK) << eurollm_last_error();
    }
    void TearDown() override {
        eurollm_context_free(ctx_);
        eurollm_model_free(model_);
    }
    eurollm_model *model_ = nullptr;
    eurollm_context *ctx_ = nullptr;
};

TEST_F(ApiMisuse, InvalidUtf8Prompt) {
    const char bad[] = "caf\xC3";  // truncated two-byte sequence
    int32_t ids[16];
    size_t n = 0;
    EXPECT_EQ(eurollm_tokenize(model_, bad, 4, EUROLLM_TOKENIZE_ADD_BOS, ids, 16, &n), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("UTF-8"), std::string::npos);
    const char overlong[] = "\xC0\xAF";
    EXPECT_EQ(eurollm_tokenize(model_, overlong, 2, 0, ids, 16, &n), EUROLLM_ERR_INVALID_ARGUMENT);
}

TEST_F(ApiMisuse, TokenIdsOutOfRange) {
    const int32_t ids[] = {1, 600};
    EXPECT_EQ(eurollm_context_decode(ctx_, ids, 2, nullptr), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("600"), std::string::npos);
    const int32_t negative[] = {-5};
    EXPECT_EQ(eurollm_context_decode(ctx_, negative, 1, nullptr), EUROLLM_ERR_INVALID_ARGUMENT);
    char text[64];
    size_t len = 0;
    EXPECT_EQ(eurollm_detokenize(model_, ids, 2, text, sizeof text, &len), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_token_to_piece(model_, 512, text, sizeof text, &len), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_context_n_past(ctx_), 0u);  // nothing was evaluated
}

TEST_F(ApiMisuse, PromptLongerThanContext) {
    std::vector<int32_t> ids(40, 5);
    EXPECT_EQ(eurollm_context_decode(ctx_, ids.data(), ids.size(), nullptr), EUROLLM_ERR_CONTEXT_FULL);
    EXPECT_NE(std::string(eurollm_last_error()).find("do not fit"), std::string::npos);
    eurollm_generator *gen = nullptr;
    ASSERT_EQ(eurollm_generator_init(ctx_, nullptr, &gen), EUROLLM_OK);
    EXPECT_EQ(eurollm_generator_append_tokens(gen, ids.data(), ids.size()), EUROLLM_ERR_CONTEXT_FULL);
    eurollm_generator_free(gen);
}

TEST_F(ApiMisuse, NullArguments) {
    eurollm_model *m = nullptr;
    EXPECT_EQ(eurollm_model_load(nullptr, nullptr, &m), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), nullptr, nullptr), EUROLLM_ERR_INVALID_ARGUMENT);
    eurollm_context *c = reinterpret_cast<eurollm_context *>(0x1);
    EXPECT_EQ(eurollm_context_init(nullptr, nullptr, &c), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(c, nullptr);  // outputs are cleared on failure
    int64_t v = 0;
    EXPECT_EQ(eurollm_model_get_info(nullptr, EUROLLM_INFO_N_VOCAB, &v), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_model_get_info(model_, EUROLLM_INFO_N_VOCAB, nullptr), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_model_get_info(model_, static_cast<eurollm_model_info>(999), &v), EUROLLM_ERR_INVALID_ARGUMENT);
    size_t n = 0;
    EXPECT_EQ(eurollm_tokenize(model_, nullptr, 5, 0, nullptr, 0, &n), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_tokenize(model_, "abc", 3, 0, nullptr, 0, nullptr), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_generator_step(nullptr, nullptr), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_context_n_ctx(nullptr), 0u);
    EXPECT_STREQ(eurollm_model_architecture(nullptr), "");
    EXPECT_EQ(eurollm_model_chat_template(nullptr), nullptr);
}

TEST_F(ApiMisuse, FreedHandles) {
    eurollm_model *m = nullptr;
    ASSERT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), nullptr, &m), EUROLLM_OK);
    eurollm_model_free(m);
    int64_t v = 0;
    EXPECT_EQ(eurollm_model_get_info(m, EUROLLM_INFO_N_VOCAB, &v), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("freed"), std::string::npos);
    eurollm_model_free(m);  // a second free is harmless

    eurollm_generator *gen = nullptr;
    ASSERT_EQ(eurollm_generator_init(ctx_, nullptr, &gen), EUROLLM_OK);
    eurollm_generator_free(gen);
    EXPECT_EQ(eurollm_generator_step(gen, nullptr), EUROLLM_ERR_INVALID_ARGUMENT);
}

TEST_F(ApiMisuse, ParentFreedBeforeChildStaysUsableUntilChildGoes) {
    eurollm_model *m = nullptr;
    ASSERT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), nullptr, &m), EUROLLM_OK);
    eurollm_context *c = nullptr;
    ASSERT_EQ(eurollm_context_init(m, nullptr, &c), EUROLLM_OK);
    eurollm_model_free(m);  // out of order: the model lives on for its context
    const int32_t bos = 1;
    EXPECT_EQ(eurollm_context_decode(c, &bos, 1, nullptr), EUROLLM_OK) << eurollm_last_error();
    int64_t v = 0;
    EXPECT_EQ(eurollm_model_get_info(m, EUROLLM_INFO_N_VOCAB, &v), EUROLLM_ERR_INVALID_ARGUMENT);
    eurollm_context_free(c);
}

TEST_F(ApiMisuse, BufferTooSmallReportsNeededSize) {
    const char text[] = "Once upon a time there was a cat";
    size_t n = 0;
    int32_t ids[2];
    EXPECT_EQ(eurollm_tokenize(model_, text, sizeof text - 1, EUROLLM_TOKENIZE_ADD_BOS, ids, 2, &n),
              EUROLLM_ERR_BUFFER_TOO_SMALL);
    EXPECT_GT(n, 2u);
    std::vector<int32_t> all(n);
    size_t n2 = 0;
    EXPECT_EQ(eurollm_tokenize(model_, text, sizeof text - 1, EUROLLM_TOKENIZE_ADD_BOS, all.data(), n, &n2), EUROLLM_OK);
    EXPECT_EQ(n, n2);
    size_t len = 0;
    EXPECT_EQ(eurollm_detokenize(model_, all.data(), all.size(), nullptr, 0, &len), EUROLLM_ERR_BUFFER_TOO_SMALL);
    EXPECT_EQ(len, sizeof text - 1);
    std::vector<float> logits(10);
    EXPECT_EQ(eurollm_context_decode_all(ctx_, all.data(), all.size(), logits.data(), logits.size()),
              EUROLLM_ERR_BUFFER_TOO_SMALL);
}

TEST_F(ApiMisuse, BadParams) {
    eurollm_model_params mp;
    EXPECT_EQ(eurollm_model_params_init(&mp, 99), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(eurollm_model_params_init(nullptr, EUROLLM_MODEL_PARAMS_VERSION), EUROLLM_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(eurollm_model_params_init(&mp, EUROLLM_MODEL_PARAMS_VERSION), EUROLLM_OK);
    mp.device = EUROLLM_DEVICE_CUDA;
    mp.device_index = eurollm_device_count(EUROLLM_DEVICE_CUDA);  // one past the last: none without CUDA
    eurollm_model *m = nullptr;
    const eurollm_status st = eurollm_model_load(eurollm_test::stories_dir().c_str(), &mp, &m);
    // UNSUPPORTED in a build without CUDA, DEVICE (no such device) in one with it.
    EXPECT_TRUE(st == EUROLLM_ERR_UNSUPPORTED || st == EUROLLM_ERR_DEVICE) << st << ": " << eurollm_last_error();
    EXPECT_EQ(m, nullptr);
    mp.device = EUROLLM_DEVICE_CPU;
    mp.device_index = 0;
    mp.n_gpu_layers = -2;
    EXPECT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), &mp, &m), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("n_gpu_layers"), std::string::npos) << eurollm_last_error();
    mp.n_gpu_layers = -1;
    mp.device = static_cast<eurollm_device_kind>(9);
    EXPECT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), &mp, &m), EUROLLM_ERR_INVALID_ARGUMENT);
    eurollm_generator_params gp;
    ASSERT_EQ(eurollm_generator_params_init(&gp, EUROLLM_GENERATOR_PARAMS_VERSION), EUROLLM_OK);
    gp.temperature = -1.0f;
    eurollm_generator *gen = nullptr;
    EXPECT_EQ(eurollm_generator_init(ctx_, &gp, &gen), EUROLLM_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(eurollm_last_error()).find("temperature"), std::string::npos);
    gp.temperature = 0.5f;
    gp.top_p = 0.0f;
    EXPECT_EQ(eurollm_generator_init(ctx_, &gp, &gen), EUROLLM_ERR_INVALID_ARGUMENT);
    eurollm_context_params cp;
    eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION);
    cp.n_threads = -3;
    eurollm_context *c = nullptr;
    EXPECT_EQ(eurollm_context_init(model_, &cp, &c), EUROLLM_ERR_INVALID_ARGUMENT);
}

TEST_F(ApiMisuse, SaveGgufAndNewParamsRejectBadArguments) {
    const fs::path dir = fs::temp_directory_path() / ("eurollm-save-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const std::string out = (dir / "m.gguf").string();
    auto expect = [](eurollm_status got, eurollm_status want, const std::string &needle) {
        EXPECT_EQ(got, want) << eurollm_last_error();
        EXPECT_NE(std::string(eurollm_last_error()).find(needle), std::string::npos) << eurollm_last_error();
    };
    expect(eurollm_model_save_gguf(nullptr, out.c_str(), EUROLLM_WEIGHT_Q8_0), EUROLLM_ERR_INVALID_ARGUMENT, "model");
    expect(eurollm_model_save_gguf(model_, nullptr, EUROLLM_WEIGHT_Q8_0), EUROLLM_ERR_INVALID_ARGUMENT, "path");
    expect(eurollm_model_save_gguf(model_, "", EUROLLM_WEIGHT_Q8_0), EUROLLM_ERR_INVALID_ARGUMENT, "path is empty");
    expect(eurollm_model_save_gguf(model_, out.c_str(), static_cast<eurollm_weight_type>(77)),
           EUROLLM_ERR_INVALID_ARGUMENT, "weight type 77");
    expect(eurollm_model_save_gguf(model_, out.c_str(), static_cast<eurollm_weight_type>(-1)),
           EUROLLM_ERR_INVALID_ARGUMENT, "weight type -1");
    expect(eurollm_model_save_gguf(model_, (dir / "no-such-dir" / "m.gguf").c_str(), EUROLLM_WEIGHT_Q8_0),
           EUROLLM_ERR_IO, "no-such-dir");
    fs::create_directories(dir / "read-only");
    fs::permissions(dir / "read-only", fs::perms::owner_read | fs::perms::owner_exec);
    if (::geteuid() != 0)  // root writes anywhere
        expect(eurollm_model_save_gguf(model_, (dir / "read-only" / "m.gguf").c_str(), EUROLLM_WEIGHT_Q8_0),
               EUROLLM_ERR_IO, "read-only");
    expect(eurollm_model_save_gguf(model_, dir.c_str(), EUROLLM_WEIGHT_Q8_0), EUROLLM_ERR_IO, dir.filename().string());
    EXPECT_FALSE(fs::exists(out));  // nothing half-written is left behind
    eurollm_model *freed = nullptr;
    ASSERT_EQ(eurollm_model_load(eurollm_test::stories_dir().c_str(), nullptr, &freed), EUROLLM_OK);
    eurollm_model_free(freed);
    expect(eurollm_model_save_gguf(freed, out.c_str(), EUROLLM_WEIGHT_F32), EUROLLM_ERR_INVALID_ARGUMENT, "freed");
    // The file a good call writes replaces an existing one whole.
    { std::ofstream(out) << "old"; }
    ASSERT_EQ(eurollm_model_save_gguf(model_, out.c_str(), EUROLLM_WEIGHT_Q4_0), EUROLLM_OK) << eurollm_last_error();
    EXPECT_EQ(read_file(out).substr(0, 4), "GGUF");
    EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 2);  // m.gguf, read-only/

    eurollm_model_params mp;
    ASSERT_EQ(eurollm_model_params_init(&mp, EUROLLM_MODEL_PARAMS_VERSION), EUROLLM_OK);
    mp.weight_type = static_cast<eurollm_weight_type>(9);
    eurollm_model *m = reinterpret_cast<eurollm_model *>(0x1);
    expect(eurollm_model_load(eurollm_test::stories_dir().c_str(), &mp, &m), EUROLLM_ERR_INVALID_ARGUMENT,
           "weight type 9");
    EXPECT_EQ(m, nullptr);
    EXPECT_EQ(eurollm_model_params_init(&mp, 3), EUROLLM_ERR_INVALID_ARGUMENT);
    eurollm_context_params cp;
    ASSERT_EQ(eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION), EUROLLM_OK);
    cp.precision = static_cast<eurollm_precision>(2);
    eurollm_context *c = reinterpret_cast<eurollm_context *>(0x1);
    expect(eurollm_context_init(model_, &cp, &c), EUROLLM_ERR_INVALID_ARGUMENT, "precision 2");
    EXPECT_EQ(c, nullptr);
    EXPECT_EQ(eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION + 1), EUROLLM_ERR_INVALID_ARGUMENT);
    fs::permissions(dir / "read-only", fs::perms::owner_all);
    fs::remove_all(dir);
}

TEST_F(ApiMisuse, StatusStringsAreNamed) {
    EXPECT_STREQ(eurollm_status_string(EUROLLM_ERR_BAD_MODEL), "bad model");
    EXPECT_STREQ(eurollm_status_string(static_cast<eurollm_status>(-77)), "unknown status");
}

}  // namespace
