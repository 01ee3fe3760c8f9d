#include "core/utf8.h"

#include <string>

namespace eurollm {
namespace {

// Length of the valid sequence starting at s[i], 0 if invalid, -1 if truncated at the end.
int sequence_length(std::string_view s, size_t i) {
    const auto c = static_cast<unsigned char>(s[i]);
    int len;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c == 0xE0) { len = 3; lo = 0xA0; }
    else if (c == 0xED) { len = 3; hi = 0x9F; }           // no UTF-16 surrogates
    else if (c >= 0xE1 && c <= 0xEF) len = 3;
    else if (c == 0xF0) { len = 4; lo = 0x90; }
    else if (c >= 0xF1 && c <= 0xF3) len = 4;
    else if (c == 0xF4) { len = 4; hi = 0x8F; }           // nothing above U+10FFFF
    else return 0;
    for (int k = 1; k < len; ++k) {
        if (i + k >= s.size()) return -1;
        const auto b = static_cast<unsigned char>(s[i + k]);
        const unsigned min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
        if (b < min || b > max) return 0;
    }
    return len;
}

}  // namespace

size_t utf8_first_invalid(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const int len = sequence_length(s, i);
        if (len <= 0) return i;
        i += static_cast<size_t>(len);
    }
    return std::string_view::npos;
}

size_t utf8_complete_prefix(std::string_view s) {
    for (size_t i = 0; i < s.size();) {
        const int len = sequence_length(s, i);
        if (len < 0) return i;
        i += len == 0 ? 1 : static_cast<size_t>(len);
    }
    return s.size();
}

std::string utf8_sanitize(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        const int len = sequence_length(s, i);
        if (len <= 0) {
            out += "\xEF\xBF\xBD";
            ++i;
        } else {
            out.append(s.substr(i, static_cast<size_t>(len)));
            i += static_cast<size_t>(len);
        }
    }
    return out;
}

}  // namespace eurollm
