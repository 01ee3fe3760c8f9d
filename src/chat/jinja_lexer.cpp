#include "chat/jinja_lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "chat/jinja_unicode.h"

namespace eurollm::chat::jinja {

const char *token_type_name(TokenType t) {
    switch (t) {
        case TokenType::Data: return "template data";
        case TokenType::VarBegin: return "'{{'";
        case TokenType::VarEnd: return "'}}'";
        case TokenType::BlockBegin: return "'{%'";
        case TokenType::BlockEnd: return "'%}'";
        case TokenType::Name: return "name";
        case TokenType::String: return "string";
        case TokenType::Integer: return "integer";
        case TokenType::Float: return "float";
        case TokenType::Operator: return "operator";
        case TokenType::Eof: return "end of template";
    }
    return "token";
}

namespace {

// Jinja normalizes every newline sequence of the source to "\n" and, without
// keep_trailing_newline, drops one trailing newline.
std::string normalize_newlines(const std::string &src) {
    std::string out;
    out.reserve(src.size());
    for (size_t i = 0; i < src.size(); ++i) {
        if (src[i] == '\r') {
            out += '\n';
            if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
        } else {
            out += src[i];
        }
    }
    if (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

// Python's \s at a byte offset: returns the byte length of the whitespace character there, or 0.
size_t space_at(const std::string &s, size_t i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) return py_isspace(c) ? 1 : 0;
    size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    if (i + len > s.size()) return 0;
    std::u32string cp;
    if (!utf8_decode(std::string_view(s).substr(i, len), cp) || cp.size() != 1) return 0;
    return py_isspace(cp[0]) ? len : 0;
}

size_t skip_spaces(const std::string &s, size_t i) {
    while (i < s.size()) {
        const size_t n = space_at(s, i);
        if (!n) break;
        i += n;
    }
    return i;
}

bool all_spaces(const std::string &s, size_t from, size_t to) {
    size_t i = from;
    while (i < to) {
        const size_t n = space_at(s, i);
        if (!n) return false;
        i += n;
    }
    return true;
}

std::string rstrip_spaces(const std::string &text) {
    std::u32string cps = to_u32(text);
    size_t e = cps.size();
    while (e > 0 && py_isspace(cps[e - 1])) --e;
    return to_utf8(std::u32string_view(cps).substr(0, e));
}

bool is_name_start(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80; }
bool is_name_char(unsigned char c) { return is_name_start(c) || (c >= '0' && c <= '9'); }

class Lexer {
public:
    explicit Lexer(const std::string &source) : src_(normalize_newlines(source)) {
        line_starts_.push_back(0);
        for (size_t i = 0; i < src_.size(); ++i)
            if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }

    std::vector<Token> run() {
        size_t pos = 0;
        const size_t n = src_.size();
        while (pos < n) {
            const size_t tag = find_tag(pos);
            if (tag == std::string::npos) {
                emit_data(src_.substr(pos), pos);
                break;
            }
            const char kind = src_[tag + 1];
            size_t after = tag + 2;
            char sign = 0;
            if (after < n && (src_[after] == '-' || src_[after] == '+')) sign = src_[after];

            size_t raw_end = 0;
            const bool raw = kind == '%' && match_raw_begin(tag, raw_end);

            std::string text = src_.substr(pos, tag - pos);
            text = strip_before_tag(text, pos, sign, kind != '{');
            emit_data(text, pos);

            if (raw) {
                pos = lex_raw(raw_end, tag);
                continue;
            }
            if (kind == '#') {
                pos = lex_comment(after + (sign ? 1 : 0), tag);
                continue;
            }
            pos = lex_tag(kind == '%', tag, after + (sign ? 1 : 0));
        }
        Token eof;
        eof.type = TokenType::Eof;
        eof.pos = position(src_.size());
        tokens_.push_back(eof);
        return std::move(tokens_);
    }

private:
    source_pos position(size_t offset) const {
        auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), offset);
        const size_t line = static_cast<size_t>(it - line_starts_.begin());
        const size_t start = line_starts_[line - 1];
        source_pos p;
        p.line = static_cast<int>(line);
        p.column = static_cast<int>(utf8_length(std::string_view(src_).substr(start, offset - start))) + 1;
        return p;
    }

    size_t find_tag(size_t from) const {
        for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
            if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
        }
        return std::string::npos;
    }

    // lstrip_blocks / "-" handling of the text in front of a tag (jinja2 OptionalLStrip).
    std::string strip_before_tag(const std::string &text, size_t text_start, char sign, bool lstrip_applies) const {
        if (sign == '-') return rstrip_spaces(text);
        if (sign == '+' || !lstrip_applies) return text;
        const size_t nl = text.rfind('\n');
        const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
        const bool line_starting = text_start == 0 || src_[text_start - 1] == '\n';
        if ((l_pos > 0 || line_starting) && l_pos < text.size() && all_spaces(text, l_pos, text.size()))
            return text.substr(0, l_pos);
        return text;
    }

    void emit_data(const std::string &text, size_t offset) {
        if (text.empty()) return;
        Token t;
        t.type = TokenType::Data;
        t.value = text;
        t.pos = position(offset);
        tokens_.push_back(std::move(t));
    }

    bool match_word(size_t i, const char *word) const {
        const size_t len = std::char_traits<char>::length(word);
        return src_.compare(i, len, word) == 0;
    }

    // {%(-|+|)\s*raw\s*(-%}\s*|%})  -- note: no trim_blocks newline after the opening raw tag.
    bool match_raw_begin(size_t tag, size_t &end) const {
        size_t i = tag + 2;
        if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
        i = skip_spaces(src_, i);
        if (!match_word(i, "raw")) return false;
        i = skip_spaces(src_, i + 3);
        if (match_word(i, "-%}")) {
            end = skip_spaces(src_, i + 3);
            return true;
        }
        if (match_word(i, "%}")) {
            end = i + 2;
            return true;
        }
        return false;
    }

    size_t lex_raw(size_t body_start, size_t open_tag) {
        for (size_t i = src_.find("{%", body_start); i != std::string::npos; i = src_.find("{%", i + 1)) {
            size_t j = i + 2;
            char sign = 0;
            if (j < src_.size() && (src_[j] == '-' || src_[j] == '+')) sign = src_[j++];
            j = skip_spaces(src_, j);
            if (!match_word(j, "endraw")) continue;
            j = skip_spaces(src_, j + 6);
            size_t end;
            if (match_word(j, "+%}")) {
                end = j + 3;
            } else if (match_word(j, "-%}")) {
                end = skip_spaces(src_, j + 3);
            } else if (match_word(j, "%}")) {
                end = j + 2;
                if (end < src_.size() && src_[end] == '\n') ++end;
            } else {
                continue;
            }
            std::string body = src_.substr(body_start, i - body_start);
            emit_data(strip_before_tag(body, body_start, sign, true), body_start);
            return end;
        }
        syntax_error(position(open_tag), "missing {% endraw %} for this {% raw %} block");
    }

    size_t lex_comment(size_t body_start, size_t open_tag) {
        const size_t e = src_.find("#}", body_start);
        if (e == std::string::npos) syntax_error(position(open_tag), "missing end of comment tag '#}'");
        if (e > body_start && src_[e - 1] == '-') return skip_spaces(src_, e + 2);
        if (e > body_start && src_[e - 1] == '+') return e + 2;
        size_t end = e + 2;
        if (end < src_.size() && src_[end] == '\n') ++end;  // trim_blocks
        return end;
    }

    size_t lex_tag(bool block, size_t tag, size_t pos) {
        Token begin;
        begin.type = block ? TokenType::BlockBegin : TokenType::VarBegin;
        begin.pos = position(tag);
        tokens_.push_back(begin);
        std::vector<char> balance;
        const size_t n = src_.size();
        while (pos < n) {
            if (balance.empty()) {
                size_t end = 0;
                bool closed = false;
                if (block) {
                    if (match_word(pos, "+%}")) {
                        end = pos + 3;
                        closed = true;
                    } else if (match_word(pos, "-%}")) {
                        end = skip_spaces(src_, pos + 3);
                        closed = true;
                    } else if (match_word(pos, "%}")) {
                        end = pos + 2;
                        if (end < n && src_[end] == '\n') ++end;  // trim_blocks
                        closed = true;
                    }
                } else {
                    if (match_word(pos, "-}}")) {
                        end = skip_spaces(src_, pos + 3);
                        closed = true;
                    } else if (match_word(pos, "}}")) {
                        end = pos + 2;
                        closed = true;
                    }
                }
                if (closed) {
                    Token t;
                    t.type = block ? TokenType::BlockEnd : TokenType::VarEnd;
                    t.pos = position(pos);
                    tokens_.push_back(t);
                    return end;
                }
            }
            const size_t sp = space_at(src_, pos);
            if (sp) {
                pos = skip_spaces(src_, pos);
                continue;
            }
            pos = lex_token(pos, balance);
        }
        return pos;  // end of template inside a tag: the parser reports it
    }

    size_t lex_token(size_t pos, std::vector<char> &balance) {
        const size_t n = src_.size();
        const unsigned char c = static_cast<unsigned char>(src_[pos]);
        Token t;
        t.pos = position(pos);
        if (c >= '0' && c <= '9') return lex_number(pos, t);
        if (is_name_start(c)) {
            size_t e = pos;
            while (e < n && is_name_char(static_cast<unsigned char>(src_[e]))) ++e;
            t.type = TokenType::Name;
            t.value = src_.substr(pos, e - pos);
            if (!utf8_valid(t.value)) syntax_error(t.pos, "invalid UTF-8 in a name");
            tokens_.push_back(std::move(t));
            return e;
        }
        if (c == '\'' || c == '"') return lex_string(pos, t);
        static const char *const ops[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[",
                                          "]",  "(",  ")",  "{",  "}",  ">",  "<", "=", ".", ":", "|", ",", ";"};
        for (const char *op : ops) {
            if (!match_word(pos, op)) continue;
            const std::string o(op);
            if (o == "(" || o == "[" || o == "{") {
                balance.push_back(o == "(" ? ')' : o == "[" ? ']' : '}');
            } else if (o == ")" || o == "]" || o == "}") {
                if (balance.empty()) syntax_error(t.pos, "unexpected '", o, "'");
                if (balance.back() != o[0]) syntax_error(t.pos, "unexpected '", o, "', expected '", balance.back(), "'");
                balance.pop_back();
            }
            t.type = TokenType::Operator;
            t.value = o;
            tokens_.push_back(std::move(t));
            return pos + o.size();
        }
        syntax_error(t.pos, "unexpected character '", src_.substr(pos, 1), "'");
    }

    size_t lex_number(size_t pos, Token &t) {
        const size_t n = src_.size();
        auto digits = [&](size_t i, int base) {
            // digits with single underscores between them: (_?d)*
            while (i < n) {
                size_t j = i;
                if (src_[j] == '_') ++j;
                if (j >= n) break;
                const char d = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[j])));
                const bool ok = base == 16 ? std::isxdigit(static_cast<unsigned char>(d)) != 0
                                           : (d >= '0' && d < static_cast<char>('0' + std::min(base, 10)));
                if (!ok) break;
                i = j + 1;
            }
            return i;
        };
        // float: (?<!\.)(\d+_)*\d+((\.(\d+_)*\d+)?e[+\-]?(\d+_)*\d+|\.(\d+_)*\d+)
        const bool after_dot = pos > 0 && src_[pos - 1] == '.';
        if (!after_dot) {
            size_t i = digits(pos + 1, 10);
            size_t f = std::string::npos;
            size_t j = i;
            bool frac = false;
            if (j + 1 < n && src_[j] == '.' && std::isdigit(static_cast<unsigned char>(src_[j + 1]))) {
                j = digits(j + 2, 10);
                frac = true;
            }
            if (j < n && (src_[j] == 'e' || src_[j] == 'E')) {
                size_t k = j + 1;
                if (k < n && (src_[k] == '+' || src_[k] == '-')) ++k;
                if (k < n && std::isdigit(static_cast<unsigned char>(src_[k]))) f = digits(k + 1, 10);
            }
            if (f == std::string::npos && frac) f = j;
            if (f != std::string::npos) {
                std::string text;
                for (size_t k = pos; k < f; ++k)
                    if (src_[k] != '_') text += src_[k];
                t.type = TokenType::Float;
                t.float_value = std::strtod(text.c_str(), nullptr);
                t.value = text;
                tokens_.push_back(std::move(t));
                return f;
            }
        }
        // integer: 0b.. 0o.. 0x.. or decimal
        int base = 10;
        size_t start = pos, end;
        if (src_[pos] == '0' && pos + 1 < n && (src_[pos + 1] == 'b' || src_[pos + 1] == 'B' || src_[pos + 1] == 'o' ||
                                                src_[pos + 1] == 'O' || src_[pos + 1] == 'x' || src_[pos + 1] == 'X')) {
            const char p = static_cast<char>(std::tolower(static_cast<unsigned char>(src_[pos + 1])));
            base = p == 'b' ? 2 : p == 'o' ? 8 : 16;
            start = pos + 2;
            end = digits(start, base);
            if (end == start) syntax_error(t.pos, "invalid integer literal");
        } else if (src_[pos] == '0') {
            // 0(_?0)*: "01" is the integer 0 followed by the integer 1, as in Jinja
            end = pos + 1;
            while (end < n && (src_[end] == '0' || (src_[end] == '_' && end + 1 < n && src_[end + 1] == '0')))
                end += src_[end] == '_' ? 2 : 1;
        } else {
            end = digits(pos + 1, 10);
        }
        std::string text;
        for (size_t k = start; k < end; ++k)
            if (src_[k] != '_') text += src_[k];
        errno = 0;
        const unsigned long long v = std::strtoull(text.c_str(), nullptr, base);
        if (errno == ERANGE || v > static_cast<unsigned long long>(std::numeric_limits<int64_t>::max()))
            syntax_error(t.pos, "integer literal ", src_.substr(pos, end - pos), " is too large");
        t.type = TokenType::Integer;
        t.int_value = static_cast<int64_t>(v);
        t.value = src_.substr(pos, end - pos);
        tokens_.push_back(std::move(t));
        return end;
    }

    size_t lex_string(size_t pos, Token &t) {
        const char quote = src_[pos];
        size_t i = pos + 1;
        while (i < src_.size() && src_[i] != quote) {
            if (src_[i] == '\\') ++i;
            ++i;
        }
        if (i >= src_.size()) syntax_error(t.pos, "unterminated string literal");
        t.type = TokenType::String;
        t.value = decode_escapes(src_.substr(pos + 1, i - pos - 1), t.pos);
        tokens_.push_back(std::move(t));
        return i + 1;
    }

    // Jinja decodes literals with .encode("ascii", "backslashreplace").decode("unicode-escape").
    static std::string decode_escapes(const std::string &body, const source_pos &pos) {
        std::u32string in;
        if (!utf8_decode(body, in)) syntax_error(pos, "invalid UTF-8 in a string literal");
        std::u32string out;
        auto hex = [&](size_t &i, int count) -> char32_t {
            char32_t v = 0;
            for (int k = 0; k < count; ++k) {
                if (i + 1 >= in.size() || !std::isxdigit(static_cast<int>(in[i + 1] < 0x80 ? in[i + 1] : 'g')))
                    syntax_error(pos, "truncated \\x/\\u/\\U escape in a string literal");
                const char32_t d = in[++i];
                v = v * 16 + (d <= '9' ? d - '0' : (d | 0x20) - 'a' + 10);
            }
            return v;
        };
        for (size_t i = 0; i < in.size(); ++i) {
            const char32_t c = in[i];
            if (c != '\\') {
                out.push_back(c);
                continue;
            }
            if (i + 1 >= in.size()) syntax_error(pos, "string literal ends with a backslash");
            const char32_t e = in[++i];
            if (e >= 0x80) {  // backslashreplace turned the character into \xNN / \uNNNN first
                char buf[16];
                if (e < 0x100)
                    std::snprintf(buf, sizeof buf, "x%02x", static_cast<unsigned>(e));
                else if (e < 0x10000)
                    std::snprintf(buf, sizeof buf, "u%04x", static_cast<unsigned>(e));
                else
                    std::snprintf(buf, sizeof buf, "U%08x", static_cast<unsigned>(e));
                out.push_back('\\');
                for (const char *p = buf; *p; ++p) out.push_back(static_cast<char32_t>(*p));
                continue;
            }
            switch (e) {
                case '\n': break;
                case '\\': out.push_back('\\'); break;
                case '\'': out.push_back('\''); break;
                case '"': out.push_back('"'); break;
                case 'a': out.push_back(7); break;
                case 'b': out.push_back(8); break;
                case 'f': out.push_back(12); break;
                case 'n': out.push_back('\n'); break;
                case 'r': out.push_back('\r'); break;
                case 't': out.push_back('\t'); break;
                case 'v': out.push_back(11); break;
                case 'x': out.push_back(hex(i, 2)); break;
                case 'u': out.push_back(hex(i, 4)); break;
                case 'U': {
                    const char32_t v = hex(i, 8);
                    if (v > 0x10FFFF) syntax_error(pos, "\\U escape out of range in a string literal");
                    out.push_back(v);
                    break;
                }
                case 'N': syntax_error(pos, "\\N{...} escapes in string literals are not supported");
                default:
                    if (e >= '0' && e <= '7') {
                        char32_t v = e - '0';
                        for (int k = 0; k < 2 && i + 1 < in.size() && in[i + 1] >= '0' && in[i + 1] <= '7'; ++k)
                            v = v * 8 + (in[++i] - '0');
                        out.push_back(v);
                    } else {
                        out.push_back('\\');
                        out.push_back(e);
                    }
            }
        }
        for (char32_t c : out)
            if (c >= 0xD800 && c <= 0xDFFF) syntax_error(pos, "surrogate code point in a string literal");
        return to_utf8(out);
    }

    std::string src_;
    std::vector<size_t> line_starts_;
    std::vector<Token> tokens_;
};

}  // namespace

std::vector<Token> tokenize(const std::string &source) {
    if (!utf8_valid(source)) syntax_error(source_pos{}, "the template is not valid UTF-8");
    return Lexer(source).run();
}

}  // namespace eurollm::chat::jinja
