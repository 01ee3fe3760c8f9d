#include "e2e_util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace fs = std::filesystem;

#ifndef EUROLLM_E2E_GOLDEN_DIR
#define EUROLLM_E2E_GOLDEN_DIR ""
#endif
#ifndef EUROLLM_E2E_TINY_DIR
#define EUROLLM_E2E_TINY_DIR ""
#endif
#ifndef EUROLLM_E2E_STORIES_DIR
#define EUROLLM_E2E_STORIES_DIR ""
#endif

namespace e2e {

static std::string env_or(const char *name, const char *fallback) {
    const char *v = std::getenv(name);
    return (v && *v) ? std::string(v) : std::string(fallback);
}

std::string golden_dir() { return env_or("EUROLLM_GOLDEN_DIR", EUROLLM_E2E_GOLDEN_DIR); }
std::string tiny_models_dir() { return env_or("EUROLLM_TINY_MODELS_DIR", EUROLLM_E2E_TINY_DIR); }
std::string stories_dir() { return env_or("EUROLLM_STORIES_DIR", EUROLLM_E2E_STORIES_DIR); }

bool is_dir(const std::string &path) {
    std::error_code ec;
    return !path.empty() && fs::is_directory(path, ec);
}

bool is_file(const std::string &path) {
    std::error_code ec;
    return !path.empty() && fs::is_regular_file(path, ec);
}

std::string join(const std::string &a, const std::string &b) { return (fs::path(a) / b).string(); }

std::vector<std::string> list_dir(const std::string &path) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!is_dir(path)) return out;
    for (const auto &e : fs::directory_iterator(path, ec)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
}

nlohmann::json read_json(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    return nlohmann::json::parse(f);
}

// ------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), small and self-contained.
// ------------------------------------------------------------------------------------------

namespace {

struct Sha256 {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t buf[64];
    size_t buf_len = 0;
    uint64_t total = 0;

    static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

    void block(const uint8_t *p) {
        static const uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        uint32_t w[64];
        for (int i = 0; i < 16; ++i)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
                   (uint32_t)p[4 * i + 3];
        for (int i = 16; i < 64; ++i) {
            uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; ++i) {
            uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
            uint32_t ch = (e & f) ^ (~e & g);
            uint32_t t1 = hh + S1 + ch + k[i] + w[i];
            uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
            uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
            uint32_t t2 = S0 + mj;
            hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }

    void update(const uint8_t *p, size_t n) {
        total += n;
        while (n > 0) {
            size_t take = std::min(n, sizeof(buf) - buf_len);
            std::copy(p, p + take, buf + buf_len);
            buf_len += take; p += take; n -= take;
            if (buf_len == 64) { block(buf); buf_len = 0; }
        }
    }

    std::string hex() {
        uint64_t bits = total * 8;
        uint8_t pad = 0x80;
        update(&pad, 1);
        uint8_t zero = 0;
        while (buf_len != 56) update(&zero, 1);
        uint8_t len[8];
        for (int i = 0; i < 8; ++i) len[i] = (uint8_t)(bits >> (56 - 8 * i));
        update(len, 8);
        static const char *digits = "0123456789abcdef";
        std::string out;
        for (uint32_t v : h)
            for (int s = 28; s >= 0; s -= 4) out.push_back(digits[(v >> s) & 0xF]);
        return out;
    }
};

}  // namespace

std::string sha256_hex(const void *data, size_t len) {
    Sha256 s;
    s.update(static_cast<const uint8_t *>(data), len);
    return s.hex();
}

std::string sha256_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) return "";
    Sha256 s;
    std::vector<char> chunk(1 << 16);
    while (f) {
        f.read(chunk.data(), (std::streamsize)chunk.size());
        std::streamsize got = f.gcount();
        if (got > 0) s.update(reinterpret_cast<const uint8_t *>(chunk.data()), (size_t)got);
    }
    return s.hex();
}

// ------------------------------------------------------------------------------------------

RowCompare compare_rows(const float *ours, size_t n_rows, size_t n_vocab, const nlohmann::json &ref_rows,
                        size_t first_row) {
    RowCompare c;
    c.worst = -1.0;
    for (size_t r = 0; r < n_rows; ++r) {
        const nlohmann::json &ref = ref_rows.at(first_row + r);
        if (ref.size() != n_vocab) throw std::runtime_error("golden row has the wrong length");
        double max_ref = 0.0, max_diff = 0.0;
        size_t at = 0;
        for (size_t j = 0; j < n_vocab; ++j) {
            double rv = ref[j].get<double>();
            double ov = ours[r * n_vocab + j];
            if (!std::isfinite(ov)) {
                ++c.n_nonfinite;
                max_diff = INFINITY;
                at = j;
                continue;
            }
            max_ref = std::max(max_ref, std::fabs(rv));
            double d = std::fabs(ov - rv);
            if (d > max_diff) { max_diff = d; at = j; }
        }
        double err = max_diff / (max_ref > 0.0 ? max_ref : 1.0);
        c.per_row.push_back(err);
        if (err > c.worst || std::isnan(err)) {
            c.worst = err;
            c.worst_row = first_row + r;
            c.worst_col = at;
            c.ours_at = ours[r * n_vocab + at];
            c.ref_at = ref[at].get<double>();
        }
    }
    if (c.worst < 0) c.worst = 0;
    return c;
}

std::string describe(const RowCompare &c) {
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "worst relative row error %.3e at position %zu (vocab id %zu: ours %.8e, reference %.8e)%s",
                  c.worst, c.worst_row, c.worst_col, c.ours_at, c.ref_at,
                  c.n_nonfinite ? ", with non-finite values" : "");
    std::ostringstream os;
    os << buf << "; per position:";
    for (double e : c.per_row) {
        std::snprintf(buf, sizeof buf, " %.1e", e);
        os << buf;
    }
    return os.str();
}

std::string status_msg(eurollm_status st) {
    return std::string(eurollm_status_string(st)) + " (" + std::to_string((int)st) + "): " + eurollm_last_error();
}

std::string open_model(const std::string &dir, uint32_t n_ctx, ModelPtr *model, ContextPtr *ctx) {
    eurollm_model_params mp;
    eurollm_status st = eurollm_model_params_init(&mp, EUROLLM_MODEL_PARAMS_VERSION);
    if (st != EUROLLM_OK) return "eurollm_model_params_init: " + status_msg(st);
    mp.device = EUROLLM_DEVICE_CPU;
    eurollm_model *m = nullptr;
    st = eurollm_model_load(dir.c_str(), &mp, &m);
    if (st != EUROLLM_OK || !m) return "eurollm_model_load(" + dir + "): " + status_msg(st);
    model->reset(m);

    eurollm_context_params cp;
    st = eurollm_context_params_init(&cp, EUROLLM_CONTEXT_PARAMS_VERSION);
    if (st != EUROLLM_OK) return "eurollm_context_params_init: " + status_msg(st);
    cp.n_ctx = n_ctx;
    eurollm_context *c = nullptr;
    st = eurollm_context_init(model->get(), &cp, &c);
    if (st != EUROLLM_OK || !c) return "eurollm_context_init: " + status_msg(st);
    ctx->reset(c);
    return "";
}

}  // namespace e2e
