// eurollm template MODEL --messages FILE.json [--no-generation-prompt]: the rendered prompt, exactly.
// eurollm chat MODEL [--system TEXT] [--messages FILE.json] [generation options]: an interactive
// terminal chat (one user turn per line of stdin), or one reply to the messages in FILE.json.
#include <cstdio>
#include <memory>

#include <unistd.h>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli.h"

namespace cli {
namespace {

std::string read_file(const std::string &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw eurollm::Error(EUROLLM_ERR_IO, "cannot open " + path);
    std::ostringstream os;
    os << in.rdbuf();
    return os.str();
}

bool print_piece(int32_t, const char *text, size_t len, void *) {
    std::fwrite(text, 1, len, stdout);
    std::fflush(stdout);
    return true;
}

}  // namespace

int cmd_template(const std::string &path, args &a) {
    std::string messages_file;
    bool generation_prompt = true;
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "--messages") messages_file = a.next(opt);
        else if (opt == "--no-generation-prompt") generation_prompt = false;
        else throw usage_error("unknown option " + opt);
    }
    if (messages_file.empty()) throw usage_error("template needs --messages FILE.json");
    const std::string messages = read_file(messages_file);
    auto model = eurollm::Model::load(path);
    size_t len = 0;
    eurollm_status st = eurollm_chat_apply_template(model.get(), nullptr, messages.c_str(), nullptr, generation_prompt,
                                                    nullptr, 0, &len);
    if (st != EUROLLM_ERR_BUFFER_TOO_SMALL) eurollm::check(st);
    std::string out(len + 1, '\0');
    eurollm::check(eurollm_chat_apply_template(model.get(), nullptr, messages.c_str(), nullptr, generation_prompt,
                                               out.data(), out.size(), &len));
    std::fwrite(out.data(), 1, len, stdout);  // nothing added: no trailing newline
    return 0;
}

int cmd_chat(const std::string &path, args &a) {
    std::string system, messages_file;
    eurollm::GeneratorParams gp;
    eurollm::ContextParams cp;
    eurollm::ModelParams mp;
    while (!a.done()) {
        const std::string opt = a.next("");
        if (opt == "--system") system = a.next(opt);
        else if (opt == "--messages") messages_file = a.next(opt);
        else if (opt == "-n" || opt == "--max-tokens") gp.max_tokens = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "--temp") gp.temperature = to_float(a.next(opt), opt);
        else if (opt == "--top-p") gp.top_p = to_float(a.next(opt), opt);
        else if (opt == "--seed") gp.seed = static_cast<uint64_t>(to_int(a.next(opt), opt));
        else if (opt == "-c" || opt == "--ctx") cp.n_ctx = static_cast<uint32_t>(to_int(a.next(opt), opt));
        else if (opt == "-t" || opt == "--threads") cp.n_threads = static_cast<int32_t>(to_int(a.next(opt), opt));
        else if (opt == "--precision") cp.precision = to_precision(a.next(opt), opt);
        else if (opt == "--kv-type") cp.kv_type = to_kv_type(a.next(opt), opt);
        else if (!device_option(opt, a, mp)) throw usage_error("unknown option " + opt);
    }
    auto model = eurollm::Model::load(path, mp);
    eurollm::Context ctx(model, cp);
    eurollm_chat *raw = nullptr;
    eurollm::check(eurollm_chat_init(ctx.get(), &gp, &raw));
    std::unique_ptr<eurollm_chat, void (*)(eurollm_chat *)> chat(raw, eurollm_chat_free);
    if (!system.empty()) eurollm::check(eurollm_chat_add_message(chat.get(), "system", system.c_str()));
    size_t len = 0;
    if (!messages_file.empty()) {  // one shot
        const auto messages = nlohmann::json::parse(read_file(messages_file), nullptr, false);
        if (!messages.is_array()) throw eurollm::Error(EUROLLM_ERR_INVALID_ARGUMENT, messages_file + ": not a JSON list");
        for (const auto &m : messages) {
            if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
                !m["content"].is_string())
                throw eurollm::Error(EUROLLM_ERR_INVALID_ARGUMENT, messages_file + ": each message needs string role and content");
            eurollm::check(eurollm_chat_add_message(chat.get(), m["role"].get<std::string>().c_str(),
                                                    m["content"].get<std::string>().c_str()));
        }
        eurollm_status st = eurollm_chat_respond(chat.get(), print_piece, nullptr, nullptr, 0, &len);
        if (st != EUROLLM_ERR_BUFFER_TOO_SMALL) eurollm::check(st);
        std::printf("\n");
        return 0;
    }
    const bool tty = isatty(fileno(stdin));
    for (std::string line;;) {
        if (tty) std::fprintf(stderr, "> ");
        if (!std::getline(std::cin, line)) break;
        if (line.empty()) continue;
        eurollm::check(eurollm_chat_add_message(chat.get(), "user", line.c_str()));
        eurollm_status st = eurollm_chat_respond(chat.get(), print_piece, nullptr, nullptr, 0, &len);
        if (st != EUROLLM_ERR_BUFFER_TOO_SMALL) eurollm::check(st);
        std::printf("\n");
    }
    return 0;
}

}  // namespace cli
