// Unit tests of the Jinja2 interpreter behind chat templates: each construct chat templates
// use, checked against the output of transformers' own Jinja2 environment (the expected strings
// of kCases were produced with transformers 5.23.0 / jinja2 3.1.6), and the errors a template
// or a conversation can cause.
#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "chat/chat_template.h"
#include "core/error.h"

namespace {

using eurollm::chat::chat_template;
using eurollm::chat::render_options;
using nlohmann::ordered_json;

const char *const kMessages = R"([{"role": "user", "content": "Grüß Gott"}, {"role": "assistant", "content": "Dobrý den"}])";
const char *const kExtra = R"({"data": {"b": 2, "a": [1, "x", null, true, 1.5]},
  "people": [{"name": "Zoë", "age": 31}, {"name": "Łukasz", "age": 25}, {"name": "Åsa"}]})";

render_options default_options() {
    render_options o;
    o.add_generation_prompt = true;
    o.bos_token = "<s>";
    o.eos_token = "</s>";
    o.extra = ordered_json::parse(kExtra);
    return o;
}

std::string run(const std::string &tmpl, const std::string &messages = kMessages,
                   const render_options &opts = default_options()) {
    return chat_template(tmpl).render(ordered_json::parse(messages), opts);
}

// Renders and returns the error message; fails the test when no eurollm::error is thrown.
std::string error_of(const std::string &tmpl, const std::string &messages = kMessages,
                     const render_options &opts = default_options()) {
    try {
        const std::string out = run(tmpl, messages, opts);
        ADD_FAILURE() << "no error for template " << tmpl << "; output: " << out;
    } catch (const eurollm::error &e) {
        EXPECT_EQ(e.status(), EUROLLM_ERR_INVALID_ARGUMENT) << e.what();
        const std::string msg = e.what();
        EXPECT_EQ(msg.rfind("chat template: ", 0), 0u) << msg;
        return msg;
    }
    return std::string();
}

bool contains(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

struct Case {
    const char *name;
    const char *tmpl;
    const char *expected;
};

// name, template, output of transformers' Jinja2 environment with kMessages and kExtra.
const Case kCases[] = {
    {"ws_minus",
     "a  {%- if true -%}  b  {%- endif -%}  c\n",
     "abc"},
    {"ws_var_minus",
     "a  {{- 'b' -}}  c",
     "abc"},
    {"ws_comment_minus",
     "a\n  {#- c -#}\n  b",
     "ab"},
    {"ws_trim_blocks",
     "{% if true %}\nx\n{% endif %}\ny",
     "x\ny"},
    {"ws_lstrip_blocks",
     "x\n    {% for i in [1,2] %}\n    {{ i }}\n    {% endfor %}\n  y",
     "x\n    1\n    2\n  y"},
    {"ws_plus_disables",
     "{% for i in [1,2] +%}\n{{ i }}\n    {%+ endfor %}",
     "\n1\n    \n2\n    "},
    {"ws_no_lstrip_for_vars",
     "   {{ 'v' }}\n  {% if true %}z{% endif %}",
     "   v\nz"},
    {"ws_trailing_newline",
     "a\n",
     "a"},
    {"ws_crlf",
     "a\r\nb\rc\n",
     "a\nb\nc"},
    {"ws_comment_trim",
     "{# note #}\nX{# inline #}Y",
     "XY"},
    {"raw_block",
     "{% raw %}{{ not evaluated }}{% endraw %}",
     "{{ not evaluated }}"},
    {"for_loop_vars",
     "{% for x in ['a','b','c'] %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }};{% endfor %}",
     "1032TrueFalse3;2121FalseFalse3;3210FalseTrue3;"},
    {"for_prev_next",
     "{% for x in [1,2,3] %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.previtem is defined }}]{% endfor %}",
     "[|2|False][1|3|True][2||True]"},
    {"for_cycle_changed",
     "{% for x in [1,1,2] %}{{ loop.cycle('odd','even') }}{{ loop.changed(x) }} {% endfor %}",
     "oddTrue evenFalse oddTrue "},
    {"for_else",
     "{% for x in [] %}never{% else %}empty{% endfor %}",
     "empty"},
    {"for_filter",
     "{% for x in range(10) if x is odd %}{{ x }}({{ loop.index }}/{{ loop.length }}) {% endfor %}",
     "1(1/5) 3(2/5) 5(3/5) 7(4/5) 9(5/5) "},
    {"for_break_continue",
     "{% for x in range(10) %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
     "023"},
    {"for_unpack",
     "{% for k, v in data.items() %}{{ k }}={{ v|tojson }};{% endfor %}",
     "b=2;a=[1, \"x\", null, true, 1.5];"},
    {"for_dict_keys",
     "{% for k in data %}{{ k }}{% endfor %}",
     "ba"},
    {"for_string",
     "{% for ch in 'żółw' %}[{{ ch }}]{% endfor %}",
     "[ż][ó][ł][w]"},
    {"for_scope",
     "{% set x = 1 %}{% for i in [1,2] %}{{ x }}{% set x = x + 10 %}{{ x }} {% endfor %}{{ x }}",
     "111 111 1"},
    {"for_nested_loop",
     "{% for i in [1,2] %}{% for j in 'ab' %}{{ loop.index }}{% endfor %}{{ loop.index }} {% endfor %}",
     "121 122 "},
    {"if_elif_else",
     "{% for n in [0, 1, 2] %}{% if n == 0 %}zero{% elif n == 1 %}one{% else %}many{% endif %} {% endfor %}",
     "zero one many "},
    {"if_set_leaks",
     "{% if true %}{% set z = 'leaked' %}{% endif %}{{ z }}",
     "leaked"},
    {"set_tuple",
     "{% set a, b = 1, 'two' %}{{ a }}-{{ b }}",
     "1-two"},
    {"set_block_filter",
     "{% set x | upper %}block {{ 1 + 1 }}{% endset %}[{{ x }}]",
     "[BLOCK 2]"},
    {"namespace_loop",
     "{% set ns = namespace(found=false, n=0) %}{% for m in messages %}{% if m.role == 'assistant' %}{% set ns.found = true %}{% endif %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.found }} {{ ns.n }}",
     "True 2"},
    {"dict_global",
     "{{ dict(a=1, b='x') }} {{ dict([('k', 2)]) }}",
     "{'a': 1, 'b': 'x'} {'k': 2}"},
    {"range_global",
     "{{ range(3)|list }} {{ range(2, 8, 3)|list }} {{ range(3, 0, -1)|list }}",
     "[0, 1, 2] [2, 5] [3, 2, 1]"},
    {"slicing",
     "{{ messages[1:] | length }} {{ [1,2,3,4,5][::-1] }} {{ [1,2,3,4,5][1:4:2] }} {{ 'Ελληνικά'[:3] }} {{ 'abc'[-1] }}",
     "1 [5, 4, 3, 2, 1] [2, 4] Ελλ c"},
    {"concat",
     "{{ 'a' + 'b' }} {{ 'n=' ~ 1 ~ ' ' ~ none ~ ' ' ~ true }} {{ [1] + [2] }}",
     "ab n=1 None True [1, 2]"},
    {"arith",
     "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % -3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1.5 * 2 }} {{ 0.1 + 0.2 }} {{ -7.5 // 2 }} {{ 10 / 4 }}",
     "3 -4 -2 3.5 1024 3.0 0.30000000000000004 -4.0 2.5"},
    {"precedence",
     "{{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ 2 ** 3 ** 2 }} {{ 'x' ~ 2 * 3 }} {{ 'a' ~ 'b' + 'c' }} {{ not true or true }}",
     "7 9 4 64 x6 abc True"},
    {"filter_binds_tight",
     "{{ 'a' + 'b' | upper }} {{ -3 | abs }}",
     "aB 3"},
    {"compare",
     "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ [1,2] == [1,2] }} {{ 'b' > 'a' }}",
     "True False True True True True"},
    {"in_not_in",
     "{{ 'ü' in 'Grüß' }} {{ 2 in [1,2] }} {{ 'a' in {'a':1} }} {{ 3 not in [1,2] }} {{ not 'x' in 'xyz' }}",
     "True True True True False"},
    {"and_or_values",
     "{{ 0 or 'fallback' }} {{ 'x' and 'y' }} {{ none or [] }} {{ '' and 1 }}",
     "fallback y [] "},
    {"condexpr",
     "{{ 'yes' if messages else 'no' }} [{{ 'x' if false }}] {{ 1 if 0 else 2 if 0 else 3 }}",
     "yes [] 3"},
    {"literals",
     "{{ 0x1F }} {{ 1_000 }} {{ 0o17 }} {{ 0b101 }} {{ 1e3 }} {{ 2.5e-7 }} {{ 'a' 'b' }} {{ (1,) }} {{ () }} {{ {'k': [1, 2]} }}",
     "31 1000 15 5 1000.0 2.5e-07 ab (1,) () {'k': [1, 2]}"},
    {"string_escapes",
     "{{ 'tab\\there' }} {{ '\\u00e9\\x41' }} {{ 'quote\\'s' }} {{ \"dq\\\"\" }} {{ '\\d' }}",
     "tab\there éA quote's dq\" \\d"},
    {"float_repr",
     "{{ 1.0 }} {{ 1e16 }} {{ 1e-5 }} {{ 0.0001 }} {{ 123456789.125 }} {{ 1e300 * 1e10 }} {{ -0.0 }} {{ 3.14159 }}",
     "1.0 1e+16 1e-05 0.0001 123456789.125 inf -0.0 3.14159"},
    {"python_repr",
     "{{ messages }} {{ data }} {{ ('a', \"it's\") }} {{ [none, true, false] }}",
     "[{'role': 'user', 'content': 'Grüß Gott'}, {'role': 'assistant', 'content': 'Dobrý den'}] {'b': 2, 'a': [1, 'x', None, True, 1.5]} ('a', \"it's\") [None, True, False]"},
    {"tests_types",
     "{{ 'a' is string }} {{ 1 is number }} {{ 1 is integer }} {{ 1.5 is float }} {{ true is boolean }} {{ none is none }} {{ data is mapping }} {{ [] is iterable }} {{ 'x' is sequence }} {{ range is callable }}",
     "True True True True True True True True True True"},
    {"tests_defined",
     "{{ x is defined }} {{ x is undefined }} {{ messages is defined }} {{ messages[0].foo is defined }} {{ data.a is defined }} {{ 'abc'.content is defined }} {{ tools is none }}",
     "False True True False True False True"},
    {"tests_values",
     "{{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 2 is in [1,2] }} {{ 1 is eq 1 }} {{ 2 is gt 1 }} {{ 1 is le 0 }} {{ 'ABC' is upper }} {{ 'abc' is lower }} {{ x is not defined }}",
     "True True True True True True False True True True"},
    {"filter_trim_length",
     "[{{ '  \\n pad \\t ' | trim }}] {{ messages | length }} {{ 'Grüß' | length }} {{ data | count }} {{ 'xxhixx' | trim('x') }}",
     "[pad] 2 4 2 hi"},
    {"filter_tojson",
     "{{ data | tojson }} {{ 'é\"\\n' | tojson }} {{ people[0] | tojson }} {{ [] | tojson }} {{ {} | tojson }}",
     "{\"b\": 2, \"a\": [1, \"x\", null, true, 1.5]} \"é\\\"\\n\" {\"name\": \"Zoë\", \"age\": 31} [] {}"},
    {"filter_tojson_indent",
     "{{ data | tojson(indent=2) }}|{{ data | tojson(indent=0) }}",
     "{\n  \"b\": 2,\n  \"a\": [\n    1,\n    \"x\",\n    null,\n    true,\n    1.5\n  ]\n}|{\n\"b\": 2,\n\"a\": [\n1,\n\"x\",\nnull,\ntrue,\n1.5\n]\n}"},
    {"filter_tojson_options",
     "{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }} {{ 'ü' | tojson(ensure_ascii=true) }} {{ data | tojson(separators=(',', ':')) }}",
     "{\"a\": 2, \"b\": 1} \"\\u00fc\" {\"b\":2,\"a\":[1,\"x\",null,true,1.5]}"},
    {"filter_case",
     "{{ 'hello wORLD' | upper }} {{ 'ΣΟΦΟΣ ΑΝΘΡΩΠΟΣ' | lower }} {{ 'straße' | upper }} {{ 'hello-world (x)' | title }} {{ 'éCOLE' | capitalize }}",
     "HELLO WORLD σοφος ανθρωπος STRASSE Hello-World (X) École"},
    {"filter_replace_default",
     "{{ 'a-b-c' | replace('-', '+') }} {{ 'a-b-c' | replace('-', '', 1) }} {{ x | default('dflt') }} {{ '' | default('empty', true) }} {{ none | default('n') }}",
     "a+b+c ab-c dflt empty None"},
    {"filter_first_last_join",
     "{{ [3,2,1] | first }} {{ 'xyz' | last }} {{ people | map(attribute='name') | join(', ') }} {{ [1,2] | join }} {{ 'ab' | list }}",
     "3 z Zoë, Łukasz, Åsa 12 ['a', 'b']"},
    {"filter_items",
     "{% for k, v in data | items %}{{ k }};{% endfor %}",
     "b;a;"},
    {"filter_select",
     "{{ messages | selectattr('role', 'equalto', 'user') | list | length }} {{ people | rejectattr('age', 'defined') | map(attribute='name') | list }} {{ [1,2,3,4] | select('even') | list }} {{ [0, 1, '', 'x'] | select | list }} {{ [1,2,3] | reject('gt', 1) | list }}",
     "1 ['Åsa'] [2, 4] [1, 'x'] [1]"},
    {"filter_map",
     "{{ ['a','b'] | map('upper') | list }} {{ people | map(attribute='age', default=0) | list }}",
     "['A', 'B'] [31, 25, 0]"},
    {"filter_sort_unique",
     "{{ ['b','A','c'] | sort }} {{ ['b','A','c'] | sort(case_sensitive=true) }} {{ people | sort(attribute='name') | map(attribute='name') | list }} {{ [3,1,3,2] | unique | list }} {{ [3,1,2] | sort(reverse=true) }}",
     "['A', 'b', 'c'] ['A', 'b', 'c'] ['Zoë', 'Åsa', 'Łukasz'] [3, 1, 2] [3, 2, 1]"},
    {"filter_numbers",
     "{{ [1,5,3] | max }} {{ [4,2,8] | min }} {{ [1,2,3] | sum }} {{ '42' | int + 1 }} {{ 'x' | int(7) }} {{ 3.9 | int }} {{ '2.5' | float }} {{ 2.675 | round(2) }} {{ 2.5 | round }} {{ 2.1 | round(0, 'ceil') }} {{ -4 | abs }}",
     "5 2 6 43 7 3 2.5 2.67 2.0 3.0 4"},
    {"filter_misc",
     "{{ 'a\\nb' | indent(2) }}|{{ 'a\\nb' | indent(2, true) }}|{{ '<b>&' | e }}|{{ '%s=%d' | format('n', 3) }}|{{ 'one two' | wordcount }}|{{ 'x' | center(5) }}|{{ [1,2] | reverse | list }}|{{ 'abc' | reverse }}|{{ data | dictsort }}",
     "a\n  b|  a\n  b|&lt;b&gt;&amp;|n=3|2|  x  |[2, 1]|cba|[('a', [1, 'x', None, True, 1.5]), ('b', 2)]"},
    {"percent_format",
     "{{ 'Hi %s, you are %d' % ('Zoë', 31) }} {{ '%.2f' % 3.14159 }}",
     "Hi Zoë, you are 31 3.14"},
    {"str_methods",
     "[{{ '  pad  '.strip() }}|{{ 'xxpadxx'.lstrip('x') }}|{{ '  pad  '.rstrip() }}] {{ 'a,b,,c'.split(',') }} {{ ' a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }}",
     "[pad|padxx|  pad] ['a', 'b', '', 'c'] ['a', 'b'] ['a', 'b c'] ['a b', 'c']"},
    {"str_methods2",
     "{{ 'Grüß'.upper() }} {{ 'ÉCOLE'.lower() }} {{ \"they're bill's\".title() }} {{ 'abc'.startswith('ab') }} {{ 'abc'.endswith(('x', 'c')) }} {{ 'a-b'.replace('-', '+') }} {{ 'Ünïcödé'.find('c') }} {{ ', '.join(['x', 'y']) }} {{ 'a\\nb'.splitlines() }} {{ '{} and {}'.format('x', 1) }}",
     "GRÜSS école They'Re Bill'S True True a+b 3 x, y ['a', 'b'] x and 1"},
    {"dict_methods",
     "{{ data.get('b') }} {{ data.get('zz', 'dflt') }} {{ data.get('zz') }} {{ data.keys() | list }} {{ data.values() | list | length }} {{ data.items() | list | length }}",
     "2 dflt None ['b', 'a'] 2 2"},
    {"getattr_getitem",
     "{{ messages[0].role }} {{ messages[0]['content'] }} {{ messages[-1].content }} {{ data['a'][1] }} {{ data.a.1 }} {{ people[2].age }}|",
     "user Grüß Gott Dobrý den x x |"},
    {"macro",
     "{% macro tag(name, body='') %}<{{ name }}>{{ body }}</{{ name }}>{% endmacro %}{{ tag('b') }}{{ tag('i', 'x') }}{{ tag(body='y', name='u') }}",
     "<b></b><i>x</i><u>y</u>"},
    {"macro_recursive",
     "{% macro count(n) %}{{ n }}{% if n > 0 %}{{ count(n - 1) }}{% endif %}{% endmacro %}{{ count(3) }}",
     "3210"},
    {"filter_block",
     "{% filter upper %}shout {{ 'this' }}{% endfilter %}",
     "SHOUT THIS"},
    {"with_block",
     "{% with a = 2, b = 3 %}{{ a * b }}{% endwith %}[{{ a }}]",
     "6[]"},
    {"generation_block",
     "{% for m in messages %}{% if m.role == 'assistant' %}{% generation %}{{ m.content }}{% endgeneration %}{% else %}{{ m.content }}{% endif %}|{% endfor %}",
     "Grüß Gott|Dobrý den|"},
    {"print_stmt",
     "{% print 'printed' %}",
     "printed"},
    {"special_vars",
     "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ tools }}|{{ documents }}",
     "<s>|</s>|True|None|None"},
};

void PrintTo(const Case &c, std::ostream *os) { *os << c.name; }

class Construct : public ::testing::TestWithParam<Case> {};

TEST_P(Construct, MatchesJinja2) { EXPECT_EQ(run(GetParam().tmpl), GetParam().expected) << GetParam().tmpl; }

INSTANTIATE_TEST_SUITE_P(Jinja, Construct, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case> &p) { return std::string(p.param.name); });

// Jinja folds constant expressions at compile time with Expr.as_const, where a failing slice is
// Undefined; at run time a slice is a Python subscript and fails (jinja_optimizer).
TEST(Semantics, ConstantFoldingOfSlices) {
    EXPECT_EQ(run("{{ (2)[1:] }}|{{ ((2)[1:] is defined) }}|{{ [(1)[::-1]] }}"), "|False|[Undefined]");
    EXPECT_TRUE(contains(error_of("{% set x = 2 %}{{ x[1:] }}"), "'int' object is not subscriptable"));
    EXPECT_TRUE(contains(error_of("{{ messages[0][1:] }}"), "unhashable type: 'slice'"));
}

// |safe and |escape give markupsafe.Markup, which escapes what is added to it.
TEST(Semantics, MarkupEscaping) {
    EXPECT_EQ(run("{{ 'a <'|safe + \"it's <b>\" }}|{{ 'x'|e + '<' }}|{{ '<' + 'x'|e }}|{{ ('%s & %d'|safe) % ('<', 3) }}|"
                  "{{ ('[' | safe).join(['<', 'b']) }}|{{ '<x>'|e|upper }}"),
              "a <it&#39;s &lt;b&gt;|x&lt;|&lt;x|&lt; & 3|&lt;[b|&LT;X&GT;");
}

TEST(Semantics, RangeObjects) {
    EXPECT_EQ(run("{{ range(3) }} {{ range(1, 9, 2)[::-1] }} {{ range(3)|list }}"), "range(0, 3) range(7, -1, -2) [0, 1, 2]");
    EXPECT_TRUE(contains(error_of("{{ range(3)|tojson }}"), "Object of type range is not JSON serializable"));
    EXPECT_EQ(run("{{ 'abc' % [1] }}|{{ '%s' % none }}"), "abc|None");
}

// ---- syntax errors: reported at compile time with line and column ------------------------------

TEST(TemplateErrors, UnclosedBlockNamesTheBlockAndLine) {
    const std::string msg = error_of("first line\n{% for m in messages %}\n{{ m.content }}\n");
    EXPECT_TRUE(contains(msg, "syntax error")) << msg;
    EXPECT_TRUE(contains(msg, "'endfor'")) << msg;
    EXPECT_TRUE(contains(msg, "'for' block opened at line 2")) << msg;
    EXPECT_TRUE(contains(msg, "line 3")) << msg;
}

TEST(TemplateErrors, UnclosedTags) {
    EXPECT_TRUE(contains(error_of("{% if true %}x"), "'if' block")) << error_of("{% if true %}x");
    EXPECT_TRUE(contains(error_of("abc {{ messages"), "'{{' tag is not closed"));
    EXPECT_TRUE(contains(error_of("abc {% if true"), "'{%' tag is not closed"));
    EXPECT_TRUE(contains(error_of("abc {# comment"), "missing end of comment"));
    EXPECT_TRUE(contains(error_of("{% raw %}abc"), "endraw"));
}

TEST(TemplateErrors, BadSyntaxHasLineAndColumn) {
    std::string msg = error_of("ok\n  {{ 1 + }}");
    EXPECT_TRUE(contains(msg, "syntax error at line 2, column 10")) << msg;
    msg = error_of("{{ (1 }}");
    EXPECT_TRUE(contains(msg, "syntax error")) << msg;
    msg = error_of("{{ x ] }}");
    EXPECT_TRUE(contains(msg, "unexpected ']'")) << msg;
    msg = error_of("{% set = 1 %}");
    EXPECT_TRUE(contains(msg, "syntax error")) << msg;
    msg = error_of("{{ 'unterminated }}");
    EXPECT_TRUE(contains(msg, "unterminated string")) << msg;
    msg = error_of("{{ 1 @ 2 }}");
    EXPECT_TRUE(contains(msg, "unexpected character '@'")) << msg;
}

TEST(TemplateErrors, UnknownAndUnsupportedTags) {
    EXPECT_TRUE(contains(error_of("{% frobnicate %}"), "unknown tag 'frobnicate'"));
    EXPECT_TRUE(contains(error_of("{% endfor %}"), "unknown tag 'endfor'"));
    EXPECT_TRUE(contains(error_of("{% include 'other.jinja' %}"), "'include' tag is not supported"));
    EXPECT_TRUE(contains(error_of("{% do x.append(1) %}"), "'do'"));
    EXPECT_TRUE(contains(error_of("{% break %}"), "outside of a for loop"));
    EXPECT_TRUE(contains(error_of("{% for x in y recursive %}{% endfor %}"), "recursive"));
}

TEST(TemplateErrors, UnknownFilterIsNamedWithPosition) {
    const std::string msg = error_of("ok\n  {{ messages | frobnicate }}");
    EXPECT_TRUE(contains(msg, "no filter named 'frobnicate'")) << msg;
    EXPECT_TRUE(contains(msg, "line 2, column 17")) << msg;
    // unknown filters fail at compile time, even in code never reached...
    EXPECT_THROW(chat_template("{% for m in [] %}{{ m | nope }}{% endfor %}"), eurollm::error);
    // ...except inside an if statement or inline if, where Jinja defers the check to run time
    EXPECT_EQ(run("{% if false %}{{ x | nope }}{% endif %}{{ 'a' if true else x | nope }}"), "a");
    EXPECT_TRUE(contains(error_of("{% if true %}{{ 1 | nope }}{% endif %}"), "no filter named 'nope' found"));
    EXPECT_TRUE(contains(error_of("{% if true %}{{ 'abc' | batch(2) }}{% endif %}"), "filter 'batch' is not supported"));
    EXPECT_TRUE(contains(error_of("{{ 'abc' | batch(2) }}"), "filter 'batch' is not supported"));
    EXPECT_TRUE(contains(error_of("{{ x is frobnicated }}"), "no test named 'frobnicated'"));
    EXPECT_TRUE(contains(error_of("{{ [1] | map('nope') | list }}"), "no filter named 'nope'"));
}

TEST(TemplateErrors, InvalidUtf8Template) {
    EXPECT_TRUE(contains(error_of(std::string("abc \xff\xfe {{ 1 }}")), "not valid UTF-8"));
}

// ---- runtime errors ----------------------------------------------------------------------------

TEST(RenderErrors, RaiseExceptionCarriesTheTemplatesMessage) {
    const std::string msg = error_of("{% if messages[0].role != 'system' %}\n  {{ raise_exception('Conversation roles must alternate!') }}\n{% endif %}");
    EXPECT_TRUE(contains(msg, "Conversation roles must alternate!")) << msg;
    EXPECT_TRUE(contains(msg, "line 2")) << msg;
}

TEST(RenderErrors, UndefinedAndTypeErrors) {
    EXPECT_TRUE(contains(error_of("{{ missing.attr }}"), "'missing' is undefined"));
    EXPECT_TRUE(contains(error_of("{{ missing + 1 }}"), "'missing' is undefined"));
    EXPECT_TRUE(contains(error_of("{{ missing() }}"), "'missing' is undefined"));
    EXPECT_TRUE(contains(error_of("{{ data.nope.deeper }}"), "'dict object' has no attribute 'nope'"));
    EXPECT_TRUE(contains(error_of("{{ 'a' + 1 }}"), "can only concatenate str (not \"int\") to str"));
    EXPECT_TRUE(contains(error_of("{{ 1 < 'a' }}"), "'<' not supported between instances of 'int' and 'str'"));
    EXPECT_TRUE(contains(error_of("{{ 1 // 0 }}"), "division or modulo by zero"));
    EXPECT_TRUE(contains(error_of("{{ 'x' in none }}"), "argument of type 'NoneType' is not iterable"));
    EXPECT_TRUE(contains(error_of("{% for x in 5 %}{% endfor %}"), "'int' object is not iterable"));
    EXPECT_TRUE(contains(error_of("{% set a, b = [1] %}"), "not enough values to unpack"));
    EXPECT_TRUE(contains(error_of("{{ x | tojson }}"), "Object of type Undefined is not JSON serializable"));
    EXPECT_TRUE(contains(error_of("{{ 2 ** 100 }}"), "too large"));
    EXPECT_TRUE(contains(error_of("{{ 'abc'.strip }}"), "call it with parentheses"));
}

TEST(RenderErrors, SandboxRefusesMutationAndPrivateAttributes) {
    EXPECT_TRUE(contains(error_of("{{ messages.append(1) }}"), "unsafe"));
    EXPECT_TRUE(contains(error_of("{{ data.update({'x': 1}) }}"), "unsafe"));
    EXPECT_TRUE(contains(error_of("{{ ''.__class__ }}"), "unsafe"));
    EXPECT_TRUE(contains(error_of("{% set d = {} %}{% set d.x = 1 %}"), "not a namespace"));
    EXPECT_TRUE(contains(error_of("{% set ns = namespace() %}{% set ns._x = 1 %}"), "underscore"));
    EXPECT_TRUE(contains(error_of("{{ namespace(_x=1) }}"), "underscore"));
}

// ---- guards against runaway templates ----------------------------------------------------------

TEST(RenderLimits, OutputSize) {
    render_options o = default_options();
    o.max_output_bytes = 1000;
    EXPECT_TRUE(contains(error_of("{% for i in range(1000) %}0123456789{% endfor %}", kMessages, o), "exceeds the limit"));
    EXPECT_TRUE(contains(error_of("{{ messages[0].role * 5000 }}", kMessages, o), "size limit"));
    EXPECT_TRUE(contains(error_of("{{ (messages[0].role * 200) ~ (messages[0].role * 200) }}", kMessages, o), "size limit"));
}

TEST(RenderLimits, LoopIterations) {
    render_options o = default_options();
    o.max_loop_iterations = 5000;
    EXPECT_TRUE(contains(error_of("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", kMessages, o),
                         "loop iterations"));
    EXPECT_TRUE(contains(error_of("{{ range(1000000) | length }}"), "Range too big"));
}

TEST(RenderLimits, RecursionDepth) {
    const std::string msg = error_of("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}");
    EXPECT_TRUE(contains(msg, "nested more than")) << msg;
}

TEST(RenderLimits, DeepNestingIsASyntaxErrorNotACrash) {
    EXPECT_TRUE(contains(error_of("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"), "nested too deeply"));
    std::string deep;
    for (int k = 0; k < 1000; ++k) deep += "{% if true %}";
    EXPECT_TRUE(contains(error_of(deep), "nested too deeply"));
}

// ---- the conversation ----------------------------------------------------------------------------

TEST(Messages, MissingFieldsNameTheMessage) {
    const std::string t = "{% for m in messages %}{{ m.content }}{% endfor %}";
    std::string msg = error_of(t, R"([{"role": "user", "content": "a"}, {"content": "no role"}])");
    EXPECT_TRUE(contains(msg, "message 1 has no 'role' field")) << msg;
    msg = error_of(t, R"([{"role": "user", "content": "a"}, {"role": "assistant"}])");
    EXPECT_TRUE(contains(msg, "message 1 (role 'assistant') has no 'content' field")) << msg;
    msg = error_of(t, R"([{"role": "user", "content": null}])");  // null values are dropped first
    EXPECT_TRUE(contains(msg, "message 0 (role 'user') has no 'content' field")) << msg;
    EXPECT_TRUE(contains(error_of(t, R"([{"role": 3, "content": "x"}])"), "'role' must be a string"));
    EXPECT_TRUE(contains(error_of(t, R"(["just text"])"), "message 0 is not a JSON object"));
    EXPECT_TRUE(contains(error_of(t, R"([])"), "empty conversation"));
    EXPECT_TRUE(contains(error_of(t, R"({"role": "user"})"), "must be a JSON array"));
    // a tool call may come without content
    EXPECT_EQ(run(t + "{{ messages[0].tool_calls[0].id }}", R"([{"role": "assistant", "tool_calls": [{"id": "abc"}]}])"),
              "abc");
}

TEST(Messages, PreprocessedAsTransformersDoes) {
    // keys whose value is null are dropped
    EXPECT_EQ(run("{{ messages[0].tool_calls is defined }}", R"([{"role": "user", "content": "x", "tool_calls": null}])"),
              "False");
    // reasoning is aliased: {"thinking": r, **message, "reasoning_content": r}
    EXPECT_EQ(run("{{ messages[0] | tojson }}", R"([{"role": "assistant", "content": "a", "reasoning": "because"}])"),
              R"({"thinking": "because", "role": "assistant", "content": "a", "reasoning": "because", "reasoning_content": "because"})");
    // content may be a list of parts; templates see it as it is
    EXPECT_EQ(run("{{ messages[0].content[0].text }}", R"([{"role": "user", "content": [{"type": "text", "text": "hi"}]}])"),
              "hi");
}

TEST(Messages, TemplateVariables) {
    render_options o;
    o.add_generation_prompt = false;
    EXPECT_EQ(run("{{ bos_token is defined }} {{ eos_token is defined }} {{ add_generation_prompt }} {{ tools is none }}",
                     kMessages, o),
              "False False False True");
    o.extra = ordered_json::parse(R"({"tools": [{"type": "function", "function": {"name": "f"}}], "bos_token": "<B>", "date_string": "1 May 2025"})");
    EXPECT_EQ(run("{{ tools[0].function.name }} {{ bos_token }} {{ date_string }}", kMessages, o), "f <B> 1 May 2025");
    o.extra = ordered_json::parse(R"({"messages": []})");
    EXPECT_TRUE(contains(error_of("x", kMessages, o), "must not contain 'messages'"));
    o.extra = ordered_json::parse(R"({"tools": {"name": "f"}})");
    EXPECT_TRUE(contains(error_of("x", kMessages, o), "'tools' must be an array"));
    o.extra = ordered_json::parse(R"({"documents": ["text"]})");
    EXPECT_TRUE(contains(error_of("x", kMessages, o), "'documents' must be an array of objects"));
    // a plain nlohmann::json converts (with its keys in sorted order)
    o.extra = nlohmann::json::parse(R"({"z": 1, "a": 2})");
    EXPECT_EQ(run("{{ z }}{{ a }}", kMessages, o), "12");
}

TEST(Messages, JsonAndOrderedJsonAgree) {
    const std::string t = "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}";
    render_options o;
    EXPECT_EQ(eurollm::chat::render(t, nlohmann::json::parse(kMessages), o),
              eurollm::chat::render(t, ordered_json::parse(kMessages), o));
}

TEST(Globals, StrftimeNow) {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char year[8];
    std::strftime(year, sizeof year, "%Y", &tm);
    EXPECT_EQ(run("{{ strftime_now('%Y') }}"), year);
    EXPECT_EQ(run("{{ strftime_now('%d %B %Y') | length > 8 }}"), "True");
}

TEST(Threads, OneTemplateManyThreads) {
    const chat_template t("{% for m in messages %}{{ m.role | upper }}: {{ m.content }}\n{% endfor %}");
    const ordered_json msgs = ordered_json::parse(kMessages);
    const std::string want = t.render(msgs, render_options());
    std::vector<std::thread> threads;
    std::vector<int> ok(4, 0);
    for (int k = 0; k < 4; ++k)
        threads.emplace_back([&, k] {
            for (int r = 0; r < 200; ++r) ok[k] += t.render(msgs, render_options()) == want;
        });
    for (auto &th : threads) th.join();
    for (int k = 0; k < 4; ++k) EXPECT_EQ(ok[k], 200);
}

TEST(Chatml, Fallback) {
    EXPECT_EQ(eurollm::chat::render_chatml(ordered_json::parse(kMessages), true),
              "<|im_start|>user\nGrüß Gott<|im_end|>\n<|im_start|>assistant\nDobrý den<|im_end|>\n<|im_start|>assistant\n");
    EXPECT_EQ(eurollm::chat::render_chatml(ordered_json::parse(kMessages), false),
              "<|im_start|>user\nGrüß Gott<|im_end|>\n<|im_start|>assistant\nDobrý den<|im_end|>\n");
    EXPECT_THROW(eurollm::chat::render_chatml(ordered_json::parse(R"([{"role": "user"}])"), true), eurollm::error);
}

}  // namespace
