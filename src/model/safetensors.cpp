#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace eurollm {

size_t safetensors_dtype_size(const std::string &dtype) {
    static const std::map<std::string, size_t> sizes = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
        {"I8", 1},  {"U8", 1},  {"U16", 2}, {"U32", 4},  {"U64", 8}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
    const auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

std::map<std::string, safetensor> parse_safetensors(const mapped_file &file) {
    const std::string &path = file.path();
    const size_t size = file.size();
    if (size < 8) fail(EUROLLM_ERR_BAD_MODEL, path, ": truncated safetensors file (", size, " bytes, no header)");
    uint64_t header_len = 0;
    for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file.data()[i];
    if (header_len > size - 8)
        fail(EUROLLM_ERR_BAD_MODEL, path, ": header length ", header_len, " runs past the end of the file (",
             size, " bytes)");
    if (header_len > (100u << 20)) fail(EUROLLM_ERR_BAD_MODEL, path, ": header length ", header_len, " is implausible");
    const char *hdr = reinterpret_cast<const char *>(file.data() + 8);
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(hdr, hdr + header_len);
    } catch (const nlohmann::json::exception &e) {
        fail(EUROLLM_ERR_BAD_MODEL, path, ": malformed safetensors header: ", e.what());
    }
    if (!header.is_object()) fail(EUROLLM_ERR_BAD_MODEL, path, ": safetensors header is not a JSON object");

    const uint8_t *data_start = file.data() + 8 + header_len;
    const uint64_t data_size = size - 8 - header_len;
    std::map<std::string, safetensor> tensors;
    for (auto it = header.begin(); it != header.end(); ++it) {
        const std::string &name = it.key();
        if (name == "__metadata__") continue;
        const nlohmann::json &info = it.value();
        auto bad = [&](const auto &...why) { fail(EUROLLM_ERR_BAD_MODEL, path, ": tensor '", name, "': ", why...); };
        if (!info.is_object()) bad("entry is not an object");
        if (!info.contains("dtype") || !info["dtype"].is_string()) bad("missing dtype");
        if (!info.contains("shape") || !info["shape"].is_array()) bad("missing shape");
        if (!info.contains("data_offsets") || !info["data_offsets"].is_array() || info["data_offsets"].size() != 2)
            bad("missing data_offsets");
        safetensor t;
        t.name = name;
        t.dtype = info["dtype"].get<std::string>();
        t.file = &file;
        const size_t elem = safetensors_dtype_size(t.dtype);
        if (elem == 0) bad("unknown dtype ", t.dtype);
        uint64_t count = 1;
        for (const auto &d : info["shape"]) {
            if (!d.is_number_unsigned()) bad("shape entries must be non-negative integers");
            const uint64_t v = d.get<uint64_t>();
            if (v > (uint64_t{1} << 40) || (v != 0 && count > std::numeric_limits<uint64_t>::max() / 2 / v))
                bad("shape is implausibly large");
            count *= v;
            t.shape.push_back(static_cast<int64_t>(v));
        }
        const auto &off = info["data_offsets"];
        if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) bad("data_offsets must be non-negative");
        const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
        if (begin > end) bad("data_offsets are reversed (", begin, " > ", end, ")");
        if (end > data_size) bad("data_offsets [", begin, ", ", end, ") lie outside the file's data (", data_size, " bytes)");
        if (count > std::numeric_limits<uint64_t>::max() / elem || end - begin != count * elem)
            bad("holds ", end - begin, " bytes but shape and dtype ", t.dtype, " need ", count * elem);
        t.data = data_start + begin;
        t.nbytes = static_cast<size_t>(end - begin);
        tensors.emplace(name, std::move(t));
    }

    // Overlapping ranges mean a corrupt or hostile file.
    std::vector<const safetensor *> by_offset;
    for (const auto &kv : tensors)
        if (kv.second.nbytes > 0) by_offset.push_back(&kv.second);
    std::sort(by_offset.begin(), by_offset.end(), [](const safetensor *a, const safetensor *b) { return a->data < b->data; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        if (by_offset[i - 1]->data + by_offset[i - 1]->nbytes > by_offset[i]->data)
            fail(EUROLLM_ERR_BAD_MODEL, path, ": tensors '", by_offset[i - 1]->name, "' and '", by_offset[i]->name,
                 "' overlap");
    }
    return tensors;
}

}  // namespace eurollm
