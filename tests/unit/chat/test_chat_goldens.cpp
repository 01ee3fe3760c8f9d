// Golden tests: the published chat templates of EuroLLM, Salamandra, Occiglot, Mistral and
// Teuken (tests/data/chat/templates) must render every conversation of goldens.json to exactly
// the string transformers' apply_chat_template produced (tests/data/chat/make_chat_goldens.py),
// and must refuse the conversations the templates refuse, with the template's own message; the
// same templates randomly corrupted render or fail with a status, never crash.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <random>
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

// The published templates corrupted at random (characters from Jinja's syntax, deleted or
// repeated spans), rendered with every golden conversation: each either renders or throws
// eurollm::error with "chat template:" and a reason, never another exception or a crash (the
// sanitizer builds check the interpreter's reads). Seeded: a failure prints the template.
TEST(ChatTemplates, CorruptedTemplatesFailCleanly) {
    static const char kAlphabet[] = "{}%#()[]|.,:'\"+-*/~=!<> \n_aeiklnorstx0129";
    std::mt19937_64 rng(20261206);
    int rendered = 0, refused = 0;
    const auto &cases = goldens()["cases"];
    for (int it = 0; it < 1500; ++it) {
        const ordered_json &c = cases[rng() % cases.size()];
        std::string t = read_file(data_path("templates/" + c["template"].get<std::string>()));
        const int edits = 1 + static_cast<int>(rng() % 3);
        for (int e = 0; e < edits && !t.empty(); ++e) {
            const size_t at = rng() % t.size(), span = std::min<size_t>(t.size() - at, 1 + rng() % 24);
            switch (rng() % 4) {
            case 0: t[at] = kAlphabet[rng() % (sizeof kAlphabet - 1)]; break;
            case 1: t.erase(at, span); break;
            case 2: t.insert(at, t.substr(at, span)); break;
            default: t.insert(at, 1, kAlphabet[rng() % (sizeof kAlphabet - 1)]); break;
            }
        }
        try {
            (void)chat_template(t).render(c["messages"], options_of(c));
            ++rendered;
        } catch (const eurollm::error &e) {
            ++refused;
            EXPECT_EQ(e.status(), EUROLLM_ERR_INVALID_ARGUMENT) << e.what();
            EXPECT_NE(std::string(e.what()).find("chat template:"), std::string::npos) << e.what();
        } catch (const std::exception &e) {
            ADD_FAILURE() << "iteration " << it << ": " << e.what() << "\ntemplate:\n" << t;
        }
    }
    std::printf("[ fuzz     ] %d corrupted templates refused, %d rendered\n", refused, rendered);
    EXPECT_GT(refused, 300);
    EXPECT_GT(rendered, 100);
}

}  // namespace
