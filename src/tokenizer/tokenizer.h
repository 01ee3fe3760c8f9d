// Text <-> token ids through the SentencePiece library, with the special tokens and add_bos_token
// of tokenizer_config.json.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace eurollm {

class tokenizer {
public:
    // Loads `model_path` (tokenizer.model). `config` is tokenizer_config.json (may be null).
    tokenizer(const std::string &model_path, const nlohmann::json &config, int64_t n_vocab);
    // From a serialized SentencePiece ModelProto built in memory (a GGUF file's vocabulary);
    // `what` names the source in error messages.
    struct serialized_proto_tag {};
    static constexpr serialized_proto_tag from_serialized_proto{};
    tokenizer(serialized_proto_tag, const std::string &proto, const std::string &what, const nlohmann::json &config,
              int64_t n_vocab);
    ~tokenizer();

    // Throws INVALID_ARGUMENT on invalid UTF-8.
    std::vector<int32_t> encode(std::string_view text, bool add_bos, bool parse_special) const;
    // Control tokens (BOS, EOS, ...) produce no text. Throws INVALID_ARGUMENT for an id out of range.
    std::string decode(const int32_t *ids, size_t n) const;
    // The piece as stored in the vocabulary.
    std::string piece(int32_t id) const;
    // The exact bytes a token contributes to text ("▁" -> ' ', "<0x0A>" -> '\n', control -> "");
    // the streaming decoder concatenates these.
    const std::string &token_bytes(int32_t id) const { return bytes_[static_cast<size_t>(id)]; }
    // SentencePiece drops the dummy-prefix space of the first piece when decoding.
    bool strips_leading_space() const { return strip_leading_space_; }

    bool add_bos_default() const { return add_bos_; }
    int32_t bos_id() const { return bos_id_; }
    int32_t eos_id() const { return eos_id_; }
    int64_t n_vocab() const { return n_vocab_; }
    bool is_control(int32_t id) const;
    // The SentencePiece vocabulary entry of id < sp_size(): piece, score and type (GGUF/SentencePiece
    // numbering: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte).
    int64_t sp_size() const { return sp_size_; }
    void vocab_entry(int32_t id, std::string *piece, float *score, int *type) const;

private:
    void init(const std::string &what, const nlohmann::json &config);
    void encode_plain(std::string_view text, std::vector<int32_t> &out) const;

    std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
    int64_t n_vocab_ = 0;
    int64_t sp_size_ = 0;
    bool add_bos_ = true;
    bool strip_leading_space_ = true;
    int32_t bos_id_ = -1, eos_id_ = -1;
    std::vector<std::pair<std::string, int32_t>> specials_;  // longest first
    std::vector<std::string> bytes_;
    std::vector<std::string> added_pieces_;  // ids >= sp_size_: added tokens from tokenizer_config
    std::vector<bool> control_;
};

}  // namespace eurollm
