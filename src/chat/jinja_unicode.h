// UTF-8 and the pieces of Python's str semantics that chat templates depend on: code-point
// indexing, Python's definition of whitespace (str.isspace / str.strip / str.split), and
// upper/lower case mapping.
//
// Case mapping covers the scripts of the EU languages: Latin (Basic, Latin-1, Extended-A/B,
// Extended Additional), Greek (with the final-sigma rule of str.lower) and Cyrillic, plus the
// special expansions Python applies there (ß -> SS, ŉ -> ʼN, İ -> i̇, ΐ/ΰ). Characters of other
// scripts are left unchanged; that is the one known difference from CPython.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace eurollm::chat::jinja {

// Decodes UTF-8; returns false on malformed input (overlongs, surrogates, truncation).
bool utf8_decode(std::string_view s, std::u32string &out);
bool utf8_valid(std::string_view s);
std::u32string to_u32(std::string_view s);  // input must be valid UTF-8
void append_utf8(std::string &out, char32_t cp);
std::string to_utf8(std::u32string_view s);
size_t utf8_length(std::string_view s);  // number of code points

bool py_isspace(char32_t c);      // str.isspace()
bool py_isprintable(char32_t c);  // str.isprintable() (approximation for unassigned code points)
bool py_isalpha(char32_t c);      // letters of the supported scripts + ASCII
bool py_isdigit(char32_t c);      // ASCII digits
bool py_iscased_upper(char32_t c);
bool py_iscased_lower(char32_t c);

std::string py_upper(std::string_view s);
std::string py_lower(std::string_view s);
std::string py_capitalize(std::string_view s);  // str.capitalize()
std::string py_title(std::string_view s);       // str.title()
std::string py_swapcase(std::string_view s);

// Python str.strip/lstrip/rstrip; chars == nullptr means whitespace.
std::string py_strip(std::string_view s, const std::string *chars, bool left, bool right);

}  // namespace eurollm::chat::jinja
