#include "train/data.h"

#include <fstream>

#include <nlohmann/json.hpp>

#include "chat/chat_template.h"
#include "core/error.h"
#include "train/rng.h"

namespace eurollm::train {
namespace {

using nlohmann::json;

struct packer {
    int64_t seq_len;
    std::vector<int32_t> tok, lab;
    void add(const std::vector<int32_t> &t, const std::vector<int32_t> &l) {
        tok.insert(tok.end(), t.begin(), t.end());
        lab.insert(lab.end(), l.begin(), l.end());
    }
};

// Conversation -> tokens with labels only on assistant turns. The assistant spans are found by
// rendering the prefix before each assistant message (with the generation prompt) and the prefix
// including it: the difference is the assistant's text as the template writes it.
void add_messages(const model &m, const tokenizer &tok, const json &messages, packer &p, const std::string &where) {
    if (!messages.is_array() || messages.empty()) fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": \"messages\" must be a non-empty array");
    std::unique_ptr<chat::chat_template> tmpl;
    chat::render_options ro;
    if (m.has_chat_template) {
        tmpl = std::make_unique<chat::chat_template>(m.chat_template);
        if (tok.bos_id() >= 0) ro.bos_token = tok.piece(tok.bos_id());
        if (tok.eos_id() >= 0) ro.eos_token = tok.piece(tok.eos_id());
    }
    auto render = [&](const json &msgs, bool gen) {
        if (!tmpl) return chat::render_chatml(msgs, gen);
        chat::render_options o = ro;
        o.add_generation_prompt = gen;
        return tmpl->render(msgs, o);
    };
    const std::string full = render(messages, false);
    // Spans [begin, end) of assistant text in `full`.
    std::vector<std::pair<size_t, size_t>> spans;
    for (size_t i = 0; i < messages.size(); ++i) {
        if (!messages[i].is_object() || messages[i].value("role", "") != "assistant") continue;
        const json before(std::vector<json>(messages.begin(), messages.begin() + static_cast<long>(i)));
        const json upto(std::vector<json>(messages.begin(), messages.begin() + static_cast<long>(i) + 1));
        const std::string a = i == 0 ? std::string() : render(before, true);
        const std::string b = render(upto, false);
        if (b.compare(0, a.size(), a) != 0 || full.compare(0, b.size(), b) != 0)
            fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": the chat template does not render conversations as prefixes; "
                 "cannot find the assistant turns");
        spans.push_back({a.size(), b.size()});
    }
    if (spans.empty()) fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": the conversation has no assistant message to learn");
    std::vector<int32_t> t, l;
    size_t at = 0;
    auto emit = [&](size_t b, size_t e, bool train) {
        if (e <= b) return;
        const auto ids = tok.encode(std::string_view(full).substr(b, e - b), false, true);
        for (int32_t id : ids) {
            t.push_back(id);
            l.push_back(train ? id : -100);
        }
    };
    if (tok.bos_id() >= 0 && full.rfind(ro.bos_token.empty() ? "\x01" : ro.bos_token, 0) != 0 && tok.add_bos_default()) {
        t.push_back(tok.bos_id());
        l.push_back(-100);
    }
    for (const auto &s : spans) {
        emit(at, s.first, false);
        emit(s.first, s.second, true);
        at = s.second;
    }
    emit(at, full.size(), false);
    p.add(t, l);
}

}  // namespace

dataset load_jsonl(const model &m, const std::string &path, int64_t seq_len) {
    if (seq_len < 2) fail(EUROLLM_ERR_INVALID_ARGUMENT, "seq_len must be at least 2");
    if (seq_len > m.hp.n_ctx_train)
        fail(EUROLLM_ERR_INVALID_ARGUMENT, "seq_len ", seq_len, " exceeds the model's context (", m.hp.n_ctx_train, ")");
    std::ifstream in(path);
    if (!in) fail(EUROLLM_ERR_IO, path, ": cannot open");
    packer p{seq_len, {}, {}};
    dataset ds;
    ds.seq_len = seq_len;
    std::string line;
    int64_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = path + ":" + std::to_string(line_no);
        json j;
        try {
            j = json::parse(line);
        } catch (const json::exception &e) {
            fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": not valid JSON: ", e.what());
        }
        if (!j.is_object()) fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": each line must be a JSON object");
        if (j.contains("tokens")) {
            std::vector<int32_t> t, l;
            try {
                t = j["tokens"].get<std::vector<int32_t>>();
                l = j.contains("labels") ? j["labels"].get<std::vector<int32_t>>() : t;
            } catch (const json::exception &) {
                fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": \"tokens\"/\"labels\" must be arrays of integers");
            }
            if (l.size() != t.size()) fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": labels and tokens differ in length");
            for (int32_t id : t)
                if (id < 0 || id >= m.hp.n_vocab) fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": token id ", id, " is outside the vocabulary");
            // Negative labels are ignored (-100 by convention), as the trainer's loss does; a label
            // past the vocabulary would otherwise fail only when its batch is stepped.
            for (int32_t id : l)
                if (id >= m.hp.n_vocab) fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": label ", id, " is outside the vocabulary");
            if (!l.empty()) l[0] = -100;
            p.add(t, l);
        } else if (j.contains("text")) {
            if (!j["text"].is_string()) fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": \"text\" must be a string");
            const tokenizer &tok = m.require_tokenizer();
            std::vector<int32_t> t = tok.encode(j["text"].get<std::string>(), tok.bos_id() >= 0, false);
            if (tok.eos_id() >= 0) t.push_back(tok.eos_id());
            std::vector<int32_t> l = t;
            if (!l.empty()) l[0] = -100;  // nothing predicts a document's first token
            p.add(t, l);
        } else if (j.contains("messages")) {
            add_messages(m, m.require_tokenizer(), j["messages"], p, where);
        } else {
            fail(EUROLLM_ERR_INVALID_ARGUMENT, where, ": expected \"text\", \"messages\" or \"tokens\"");
        }
        ++ds.n_documents;
    }
    const int64_t total = static_cast<int64_t>(p.tok.size());
    ds.n_seqs = total / seq_len;
    if (ds.n_seqs == 0 && total >= 2) ds.n_seqs = 1;  // one short sequence, padded
    if (ds.n_seqs == 0) fail(EUROLLM_ERR_INVALID_ARGUMENT, path, ": no training data");
    ds.tokens.assign(static_cast<size_t>(ds.n_seqs * seq_len), m.hp.pad_id >= 0 ? m.hp.pad_id : 0);
    ds.labels.assign(static_cast<size_t>(ds.n_seqs * seq_len), -100);
    const int64_t n = std::min(total, ds.n_seqs * seq_len);
    std::copy(p.tok.begin(), p.tok.begin() + n, ds.tokens.begin());
    std::copy(p.lab.begin(), p.lab.begin() + n, ds.labels.begin());
    return ds;
}

std::vector<int64_t> dataset::order(uint64_t seed, uint64_t epoch) const {
    std::vector<int64_t> o(static_cast<size_t>(n_seqs));
    for (int64_t i = 0; i < n_seqs; ++i) o[static_cast<size_t>(i)] = i;
    rng r(mix64(seed) ^ mix64(epoch + 0x5eed));
    for (int64_t i = n_seqs - 1; i > 0; --i) {
        const int64_t j = static_cast<int64_t>(r.next() % static_cast<uint64_t>(i + 1));
        std::swap(o[static_cast<size_t>(i)], o[static_cast<size_t>(j)]);
    }
    return o;
}

dataset dataset::split_tail(int64_t n) {
    if (n <= 0 || n >= n_seqs) fail(EUROLLM_ERR_INVALID_ARGUMENT, "cannot hold out ", n, " of ", n_seqs, " sequences");
    dataset d;
    d.seq_len = seq_len;
    d.n_seqs = n;
    const size_t cut = static_cast<size_t>((n_seqs - n) * seq_len);
    d.tokens.assign(tokens.begin() + static_cast<long>(cut), tokens.end());
    d.labels.assign(labels.begin() + static_cast<long>(cut), labels.end());
    tokens.resize(cut);
    labels.resize(cut);
    n_seqs -= n;
    return d;
}

}  // namespace eurollm::train
