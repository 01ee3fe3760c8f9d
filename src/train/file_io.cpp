#include "train/file_io.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace eurollm::train {

void write_safetensors(const std::string &path, const std::vector<st_tensor> &tensors,
                       const std::map<std::string, std::string> &metadata, const char *crash_tag) {
    // The header keeps the given order (nlohmann::ordered_json), as torch's writer does not, but
    // readers index by name.
    nlohmann::ordered_json header;
    if (!metadata.empty()) {
        nlohmann::ordered_json meta;
        for (const auto &kv : metadata) meta[kv.first] = kv.second;
        header["__metadata__"] = meta;
    }
    size_t offset = 0;
    for (const auto &t : tensors) {
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.nbytes}}};
        offset += t.nbytes;
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');
    write_file_atomic(
        path,
        [&](const byte_sink &sink) {
            uint8_t len[8];
            const uint64_t n = h.size();
            for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(n >> (8 * i));
            sink(len, 8);
            sink(h.data(), h.size());
            for (const auto &t : tensors) {
                // In slices, so the crash hook can fire in the middle of the data.
                const char *p = static_cast<const char *>(t.data);
                size_t left = t.nbytes;
                while (left > 0) {
                    const size_t chunk = std::min<size_t>(left, size_t{1} << 20);
                    sink(p, chunk);
                    p += chunk;
                    left -= chunk;
                }
            }
        },
        crash_tag);
}

}  // namespace eurollm::train
