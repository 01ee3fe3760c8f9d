#include "tokenizer/tokenizer.h"

#include <algorithm>

#include <sentencepiece_processor.h>

#include "core/error.h"
#include "core/utf8.h"

namespace eurollm {
namespace {

// The byte a "<0xNN>" byte-fallback piece stands for, or -1.
int byte_piece_value(const std::string &p) {
    if (p.size() != 6 || p.compare(0, 3, "<0x") != 0 || p[5] != '>') return -1;
    int v = 0;
    for (int i = 3; i < 5; ++i) {
        const char c = p[static_cast<size_t>(i)];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else return -1;
    }
    return v;
}

std::string replace_all(std::string s, const std::string &from, const std::string &to) {
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
    return s;
}

}  // namespace

tokenizer::tokenizer(const std::string &model_path, const nlohmann::json &config, int64_t n_vocab)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), n_vocab_(n_vocab) {
    const auto status = sp_->Load(model_path);
    if (!status.ok()) fail(EUROLLM_ERR_BAD_MODEL, model_path, ": cannot load SentencePiece model: ", status.ToString());
    init(model_path, config);
}

tokenizer::tokenizer(serialized_proto_tag, const std::string &proto, const std::string &what,
                     const nlohmann::json &config, int64_t n_vocab)
    : sp_(std::make_unique<sentencepiece::SentencePieceProcessor>()), n_vocab_(n_vocab) {
    const auto status = sp_->LoadFromSerializedProto(proto);
    if (!status.ok()) fail(EUROLLM_ERR_BAD_MODEL, what, ": cannot build the tokenizer from the vocabulary: ", status.ToString());
    init(what, config);
}

void tokenizer::init(const std::string &what, const nlohmann::json &config) {
    sp_size_ = sp_->GetPieceSize();
    if (sp_size_ > n_vocab_)
        fail(EUROLLM_ERR_BAD_MODEL, what, ": tokenizer has ", sp_size_, " pieces but vocab_size is ", n_vocab_);
    bos_id_ = sp_->bos_id();
    eos_id_ = sp_->eos_id();

    bytes_.resize(static_cast<size_t>(n_vocab_));
    control_.assign(static_cast<size_t>(n_vocab_), false);
    added_pieces_.assign(static_cast<size_t>(n_vocab_ - sp_size_), std::string());
    for (int32_t id = 0; id < sp_size_; ++id) {
        const std::string p = sp_->IdToPiece(id);
        if (sp_->IsControl(id)) {
            control_[static_cast<size_t>(id)] = true;
            specials_.emplace_back(p, id);
        } else if (sp_->IsUnknown(id)) {
            bytes_[static_cast<size_t>(id)] = " \xE2\x81\x87 ";  // SentencePiece renders <unk> as " ⁇ "
        } else if (sp_->IsByte(id)) {
            const int b = byte_piece_value(p);
            bytes_[static_cast<size_t>(id)] = b >= 0 ? std::string(1, static_cast<char>(b)) : std::string();
        } else {
            bytes_[static_cast<size_t>(id)] = replace_all(p, "\xE2\x96\x81", " ");
        }
    }

    if (config.is_object()) {
        if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean()) add_bos_ = config["add_bos_token"];
        // Added tokens (ChatML markers and the like), possibly beyond the SentencePiece vocabulary.
        if (config.contains("added_tokens_decoder") && config["added_tokens_decoder"].is_object()) {
            for (auto it = config["added_tokens_decoder"].begin(); it != config["added_tokens_decoder"].end(); ++it) {
                int64_t id = -1;
                try {
                    id = std::stoll(it.key());
                } catch (const std::exception &) {
                    fail(EUROLLM_ERR_BAD_MODEL, "tokenizer_config.json: added token id '", it.key(), "' is not a number");
                }
                if (id < 0 || id >= n_vocab_ || !it.value().is_object() || !it.value().contains("content") ||
                    !it.value()["content"].is_string())
                    fail(EUROLLM_ERR_BAD_MODEL, "tokenizer_config.json: added token ", it.key(), " is malformed or out of range");
                const std::string content = it.value()["content"];
                const bool special = it.value().value("special", false);
                const auto idx = static_cast<size_t>(id);
                if (id >= sp_size_) {
                    added_pieces_[idx - static_cast<size_t>(sp_size_)] = content;
                    bytes_[idx] = special ? std::string() : content;
                    control_[idx] = special;
                }
                if (std::none_of(specials_.begin(), specials_.end(), [&](const auto &s) { return s.second == id; }))
                    specials_.emplace_back(content, static_cast<int32_t>(id));
            }
        }
    }
    std::sort(specials_.begin(), specials_.end(),
              [](const auto &a, const auto &b) { return a.first.size() > b.first.size(); });
    specials_.erase(std::remove_if(specials_.begin(), specials_.end(), [](const auto &s) { return s.first.empty(); }),
                    specials_.end());
}

tokenizer::~tokenizer() = default;

bool tokenizer::is_control(int32_t id) const {
    return id >= 0 && id < n_vocab_ && control_[static_cast<size_t>(id)];
}

void tokenizer::encode_plain(std::string_view text, std::vector<int32_t> &out) const {
    if (text.empty()) return;
    std::vector<int> ids;
    const auto status = sp_->Encode(text, &ids);
    if (!status.ok()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "tokenize: ", status.ToString());
    out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> tokenizer::encode(std::string_view text, bool add_bos, bool parse_special) const {
    const size_t bad = utf8_first_invalid(text);
    if (bad != std::string_view::npos)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "text is not valid UTF-8 (invalid byte at offset ", bad, ")");
    std::vector<int32_t> out;
    if (add_bos && bos_id_ >= 0) out.push_back(bos_id_);
    if (!parse_special) {
        encode_plain(text, out);
        return out;
    }
    // Split on special-token strings (longest match first); plain runs go through SentencePiece.
    size_t start = 0, i = 0;
    while (i < text.size()) {
        const std::pair<std::string, int32_t> *hit = nullptr;
        for (const auto &s : specials_) {
            if (text.compare(i, s.first.size(), s.first) == 0) {
                hit = &s;
                break;
            }
        }
        if (!hit) {
            ++i;
            continue;
        }
        encode_plain(text.substr(start, i - start), out);
        out.push_back(hit->second);
        i += hit->first.size();
        start = i;
    }
    encode_plain(text.substr(start), out);
    return out;
}

std::string tokenizer::decode(const int32_t *ids, size_t n) const {
    std::string out;
    std::vector<int> run;  // consecutive SentencePiece ids, decoded together so byte pieces merge
    auto flush = [&] {
        if (run.empty()) return;
        std::string text;
        const auto status = sp_->Decode(run, &text);
        if (!status.ok()) fail(EUROLLM_ERR_INVALID_ARGUMENT, "detokenize: ", status.ToString());
        out += text;
        run.clear();
    };
    for (size_t i = 0; i < n; ++i) {
        const int32_t id = ids[i];
        if (id < 0 || id >= n_vocab_) fail(EUROLLM_ERR_INVALID_ARGUMENT, "token id ", id, " at index ", i,
                                           " is outside the vocabulary [0, ", n_vocab_, ")");
        if (id < sp_size_) {
            run.push_back(id);
        } else {
            flush();
            out += bytes_[static_cast<size_t>(id)];
        }
    }
    flush();
    return out;
}

void tokenizer::vocab_entry(int32_t id, std::string *piece, float *score, int *type) const {
    if (id < 0 || id >= sp_size_) fail(EUROLLM_ERR_INVALID_ARGUMENT, "token id ", id, " is not in the SentencePiece vocabulary");
    *piece = sp_->IdToPiece(id);
    *score = sp_->GetScore(id);
    *type = sp_->IsUnknown(id) ? 2 : sp_->IsControl(id) ? 3 : sp_->IsUnused(id) ? 5 : sp_->IsByte(id) ? 6 : 1;
}

std::string tokenizer::piece(int32_t id) const {
    if (id < 0 || id >= n_vocab_)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "token id ", id, " is outside the vocabulary [0, ", n_vocab_, ")");
    if (id < sp_size_) return sp_->IdToPiece(id);
    const std::string &p = added_pieces_[static_cast<size_t>(id - sp_size_)];
    return p;
}

}  // namespace eurollm
