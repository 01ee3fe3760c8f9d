// UTF-8 validation and completeness checks for prompts and streamed text.
#pragma once

#include <cstddef>
#include <string_view>

namespace eurollm {

// Byte offset of the first invalid sequence, or npos when `s` is valid UTF-8.
size_t utf8_first_invalid(std::string_view s);

// Length of the longest prefix of `s` that does not end inside an incomplete multi-byte sequence.
// Invalid bytes count as complete (they are replaced on output, never held back forever).
size_t utf8_complete_prefix(std::string_view s);

// `s` with every invalid sequence replaced by U+FFFD.
std::string utf8_sanitize(std::string_view s);

}  // namespace eurollm
