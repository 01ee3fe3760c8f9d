// Tokenizer for Jinja2 templates, configured the way transformers configures its environment:
// trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False, default delimiters.
// Whitespace control ({%- -%}, {{- -}}, {#- -#}, {%+ +%}), comments and {% raw %} blocks are
// resolved here, so the parser only sees text data and the tokens inside tags.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chat/jinja_error.h"

namespace eurollm::chat::jinja {

enum class TokenType { Data, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Integer, Float, Operator, Eof };

struct Token {
    TokenType type = TokenType::Eof;
    std::string value;  // Data text, name, decoded string literal, operator
    int64_t int_value = 0;
    double float_value = 0.0;
    source_pos pos;
};

const char *token_type_name(TokenType t);

// Throws eurollm::error (syntax error with position) on malformed input.
std::vector<Token> tokenize(const std::string &source);

}  // namespace eurollm::chat::jinja
