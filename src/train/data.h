// Training data: JSONL files packed into fixed-length sequences of token ids and labels.
//
// Each line is one JSON object, one of:
//   {"text": "..."}                         plain text: BOS + tokens + EOS, every token trained
//   {"messages": [{"role", "content"}, ...]}  a conversation rendered with the model's chat
//                                           template (ChatML when it has none); the loss is only
//                                           on the assistant turns (the rest is labelled -100)
//   {"tokens": [ids...], "labels": [...]}   ids directly (labels optional; for models without
//                                           a tokenizer and for tests)
// Documents are concatenated and cut into sequences of seq_len; a document boundary never
// trains the first token of the next one (its label is -100). The order of sequences within an
// epoch is a permutation drawn from (seed, epoch), so a position (epoch, offset) names exactly the
// next batch and a resumed run reads the same data as an uninterrupted one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"

namespace eurollm::train {

struct dataset {
    int64_t seq_len = 0;
    int64_t n_seqs = 0;
    int64_t n_documents = 0;
    std::vector<int32_t> tokens, labels;  // [n_seqs, seq_len]

    // The order of sequences in `epoch` (a permutation of [0, n_seqs)).
    std::vector<int64_t> order(uint64_t seed, uint64_t epoch) const;
    // Moves the last n sequences into a new dataset (a held-out split).
    dataset split_tail(int64_t n);
};

dataset load_jsonl(const model &m, const std::string &path, int64_t seq_len);

}  // namespace eurollm::train
