// Helpers shared by the end-to-end tests: where the fixtures are, golden files, sha256, row
// comparison, and RAII owners for the C API handles. The tests use only the public C API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "eurollm.h"

namespace e2e {

// Directories: environment variable if set, else the path CMake compiled in.
std::string golden_dir();       // EUROLLM_GOLDEN_DIR: tests/data/golden
std::string tiny_models_dir();  // EUROLLM_TINY_MODELS_DIR: output of make_tiny_models.py
std::string stories_dir();      // EUROLLM_STORIES_DIR: the stories260K model directory

bool is_dir(const std::string &path);
bool is_file(const std::string &path);
std::string join(const std::string &a, const std::string &b);
// Sorted names of the entries of a directory (empty if it does not exist).
std::vector<std::string> list_dir(const std::string &path);

nlohmann::json read_json(const std::string &path);
// Lower-case hex SHA-256 of a file's bytes; empty string if it cannot be read.
std::string sha256_file(const std::string &path);
std::string sha256_hex(const void *data, size_t len);

// Per-row comparison: err(row) = max_j |ours[j] - ref[j]| / max_j |ref[j]|.
struct RowCompare {
    double worst = 0.0;       // the largest err(row)
    size_t worst_row = 0;     // which row
    size_t worst_col = 0;     // where its largest difference is
    double ours_at = 0.0;     // values at that place
    double ref_at = 0.0;
    size_t n_nonfinite = 0;   // non-finite values in ours
    std::vector<double> per_row;
};
// ours: n_rows * n_vocab floats; ref_rows: JSON rows [first_row, first_row + n_rows).
RowCompare compare_rows(const float *ours, size_t n_rows, size_t n_vocab, const nlohmann::json &ref_rows,
                        size_t first_row);
std::string describe(const RowCompare &c);

// A message for a failed C API call.
std::string status_msg(eurollm_status st);

struct ModelDeleter { void operator()(eurollm_model *m) const { eurollm_model_free(m); } };
struct ContextDeleter { void operator()(eurollm_context *c) const { eurollm_context_free(c); } };
struct GeneratorDeleter { void operator()(eurollm_generator *g) const { eurollm_generator_free(g); } };
using ModelPtr = std::unique_ptr<eurollm_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<eurollm_context, ContextDeleter>;
using GeneratorPtr = std::unique_ptr<eurollm_generator, GeneratorDeleter>;

// Load a model on the CPU and make a context of n_ctx tokens (0: the library's default).
// Returns "" on success, else a message naming the call that failed.
std::string open_model(const std::string &dir, uint32_t n_ctx, ModelPtr *model, ContextPtr *ctx);

}  // namespace e2e
