// Golden tests: the published chat templates of EuroLLM, Salamandra, Occiglot, Mistral and
// Teuken (tests/data/chat/templates) must render every conversation of goldens.json to exactly
// the string transformers' apply_chat_template produced (tests/data/chat/make_chat_goldens.py),
// and must refuse the conversations the templates refuse, with the template's own message.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "chat/chat_template.h"
#include "core/error.h"

namespace {

using nlohmann::ordered_json;
using eurollm::chat::chat_template;
using eurollm::chat::render_options;

std::string data_path(const std::string &rel) { return std::string(EUROLLM_CHAT_DATA_DIR) + "/" + rel; }

std::string read_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error("cannot open " + path);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

const ordered_json &goldens() {
    static const ordered_json g = ordered_json::parse(read_file(data_path("goldens.json")));
    return g;
}

std::vector<size_t> case_indices() {
    std::vector<size_t> idx;
    for (size_t k = 0; k < goldens()["cases"].size(); ++k) idx.push_back(k);
    return idx;
}

std::string case_name(const ::testing::TestParamInfo<size_t> &info) {
    std::string name = goldens()["cases"][info.param]["name"].get<std::string>();
    for (char &c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
    return name;
}

render_options options_of(const ordered_json &c) {
    render_options o;
    o.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    o.bos_token = c["bos_token"].get<std::string>();
    o.eos_token = c["eos_token"].get<std::string>();
    o.extra = c["extra"];
    return o;
}

class ChatGolden : public ::testing::TestWithParam<size_t> {};

TEST_P(ChatGolden, MatchesTransformers) {
    const ordered_json &c = goldens()["cases"][GetParam()];
    const chat_template tmpl(read_file(data_path("templates/" + c["template"].get<std::string>())));
    const render_options opts = options_of(c);
    if (c.contains("expected")) {
        EXPECT_EQ(tmpl.render(c["messages"], opts), c["expected"].get<std::string>());
    } else {
        const std::string want = c["expected_error"].get<std::string>();
        try {
            const std::string out = tmpl.render(c["messages"], opts);
            ADD_FAILURE() << "expected the error \"" << want << "\", got output:\n" << out;
        } catch (const eurollm::error &e) {
            EXPECT_EQ(e.status(), EUROLLM_ERR_INVALID_ARGUMENT);
            EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("chat template:"), std::string::npos) << e.what();
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Templates, ChatGolden, ::testing::ValuesIn(case_indices()), case_name);

TEST(ChatGoldens, CoverEveryStoredTemplate) {
    std::vector<std::string> used;
    for (const auto &c : goldens()["cases"]) used.push_back(c["template"].get<std::string>());
    for (const char *t : {"EuroLLM-9B-Instruct.jinja", "salamandra-7b-instruct.jinja", "occiglot-7b-eu5-instruct.jinja",
                          "Mistral-7B-Instruct-v0.1.jinja", "Mistral-7B-Instruct-v0.2.jinja", "Mistral-7B-Instruct-v0.3.jinja",
                          "Teuken-7B-instruct-commercial-v0.4.default.jinja", "Teuken-7B-instruct-commercial-v0.4.DE.jinja",
                          "chatml.jinja"})
        EXPECT_NE(std::find(used.begin(), used.end(), t), used.end()) << t;
    EXPECT_GE(goldens()["cases"].size(), 50u);
}

// The built-in ChatML fallback is the stored chatml.jinja template, and render_chatml agrees with
// transformers on every ChatML golden.
TEST(ChatGoldens, ChatmlFallbackMatches) {
    EXPECT_EQ(eurollm::chat::chatml_template_source(), read_file(data_path("templates/chatml.jinja")));
    int n = 0;
    for (const auto &c : goldens()["cases"]) {
        if (c["template"] != "chatml.jinja") continue;
        ++n;
        EXPECT_EQ(eurollm::chat::render_chatml(c["messages"], c["add_generation_prompt"].get<bool>()),
                  c["expected"].get<std::string>())
            << c["name"];
        // the nlohmann::json overload renders the same text
        EXPECT_EQ(eurollm::chat::render_chatml(nlohmann::json(c["messages"]), c["add_generation_prompt"].get<bool>()),
                  c["expected"].get<std::string>());
    }
    EXPECT_GT(n, 0);
}

}  // namespace
