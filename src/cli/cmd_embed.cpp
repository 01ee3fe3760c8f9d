// eurollm embed MODEL [--pool mean|last|first] [--normalize] [--dim N] [--format json|npy]
//                    [--precision exact|bf16] < lines.txt
// Embeds each input line (tokenized as generate does, BOS included). json: one array per line on
// stdout; npy: one float32 [n, dim] NumPy array on stdout.
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cli/cli.h"

namespace cli {
namespace {

void write_npy(const std::vector<float> &data, size_t rows, size_t dim) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                         std::to_string(dim) + "), }";
    const size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    const uint16_t hlen = static_cast<uint16_t>(header.size());
    std::fwrite("\x93NUMPY\x01\x00", 1, 8, stdout);
    const unsigned char len_le[2] = {static_cast<unsigned char>(hlen & 0xff), static_cast<unsigned char>(hlen >> 8)};
    std::fwrite(len_le, 1, 2, stdout);
    std::fwrite(header.data(), 1, header.size(), stdout);
    std::fwrite(data.data(), sizeof(float), data.size(), stdout);  // x86-64 and aarch64: little-endian
}

}  // namespace

int cmd_embed(const std::string &path, args &a) {
    eurollm_embed_params ep;
    eurollm_embed_params_init(&ep, EUROLLM_EMBED_PARAMS_VERSION);
    eurollm::ContextParams cp;
    eurollm::ModelParams mp;
    std::string format = "json";
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "--pool") {
            const std::string p = a.next(opt);
            if (p == "mean") ep.pooling = EUROLLM_POOLING_MEAN;
            else if (p == "last") ep.pooling = EUROLLM_POOLING_LAST;
            else if (p == "first") ep.pooling = EUROLLM_POOLING_FIRST;
            else throw usage_error("--pool must be mean, last or first");
        } else if (opt == "--normalize") {
            ep.normalize = true;
        } else if (opt == "--dim") {
            ep.dim = static_cast<uint32_t>(to_int(a.next(opt), opt));
        } else if (opt == "--format") {
            format = a.next(opt);
            if (format != "json" && format != "npy") throw usage_error("--format must be json or npy");
        } else if (opt == "-t" || opt == "--threads") {
            cp.n_threads = static_cast<int32_t>(to_int(a.next(opt), opt));
        } else if (opt == "-c" || opt == "--ctx") {
            cp.n_ctx = static_cast<uint32_t>(to_int(a.next(opt), opt));
        } else if (opt == "--precision") {
            cp.precision = to_precision(a.next(opt), opt);
        } else if (!device_option(opt, a, mp)) {
            throw usage_error("unknown option " + opt);
        }
    }
    auto model = eurollm::Model::load(path, mp);
    eurollm::Context ctx(model, cp);
    std::vector<std::string> lines;
    for (std::string line; std::getline(std::cin, line);) lines.push_back(line);

    std::vector<float> all;
    size_t dim = 0;
    constexpr size_t kChunk = 64;  // lines per call: bounds the memory of per-token hidden states
    for (size_t first = 0; first < lines.size(); first += kChunk) {
        const size_t n = std::min(kChunk, lines.size() - first);
        std::vector<const char *> texts;
        std::vector<size_t> lens;
        for (size_t i = first; i < first + n; ++i) {
            texts.push_back(lines[i].data());
            lens.push_back(lines[i].size());
        }
        size_t rows = 0;
        eurollm_status st = eurollm_embed_texts(ctx.get(), texts.data(), lens.data(), n, &ep, nullptr, 0, &rows, &dim);
        if (st != EUROLLM_ERR_BUFFER_TOO_SMALL) eurollm::check(st);
        std::vector<float> out(rows * dim);
        eurollm::check(eurollm_embed_texts(ctx.get(), texts.data(), lens.data(), n, &ep, out.data(), out.size(), &rows, &dim));
        if (format == "json") {
            for (size_t r = 0; r < rows; ++r) {
                std::printf("[");
                for (size_t j = 0; j < dim; ++j) std::printf(j ? ", %.9g" : "%.9g", static_cast<double>(out[r * dim + j]));
                std::printf("]\n");
            }
        } else {
            all.insert(all.end(), out.begin(), out.end());
        }
    }
    if (format == "npy") write_npy(all, dim ? all.size() / dim : 0, dim);
    return 0;
}

}  // namespace cli
