#include "chat/jinja_unicode.h"

namespace eurollm::chat::jinja {

bool utf8_decode(std::string_view s, std::u32string &out) {
    out.clear();
    out.reserve(s.size());
    size_t i = 0;
    const size_t n = s.size();
    while (i < n) {
        const unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            out.push_back(c);
            ++i;
            continue;
        }
        int len;
        char32_t cp;
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) return false;
        for (int k = 1; k < len; ++k) {
            const unsigned char cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        out.push_back(cp);
        i += len;
    }
    return true;
}

bool utf8_valid(std::string_view s) {
    std::u32string tmp;
    return utf8_decode(s, tmp);
}

std::u32string to_u32(std::string_view s) {
    std::u32string out;
    utf8_decode(s, out);
    return out;
}

void append_utf8(std::string &out, char32_t cp) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
        out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
}

std::string to_utf8(std::u32string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char32_t c : s) append_utf8(out, c);
    return out;
}

size_t utf8_length(std::string_view s) {
    size_t n = 0;
    for (unsigned char c : s)
        if ((c & 0xC0) != 0x80) ++n;
    return n;
}

bool py_isspace(char32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool py_isprintable(char32_t c) {
    if (c < 0x20 || c == 0x7F) return false;
    if (c < 0x7F) return true;
    if (c <= 0xA0 || c == 0xAD) return false;  // C1 controls, NBSP (Zs), soft hyphen (Cf)
    if (c == 0x1680 || (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x2064) ||
        (c >= 0x2066 && c <= 0x206F) || c == 0x3000 || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB))
        return false;  // Zs, Zl, Zp, Cf
    if (c == 0x061C || c == 0x180E || (c >= 0x0600 && c <= 0x0605) || c == 0x06DD || c == 0x070F) return false;
    if ((c >= 0xE000 && c <= 0xF8FF) || c >= 0xF0000) return false;  // private use
    if (c == 0xE0001 || (c >= 0xE0020 && c <= 0xE007F)) return false;
    return true;
}

namespace {

// Simple (one-to-one) lower-case mapping; returns c when there is none.
char32_t lower1(char32_t c) {
    if (c < 0x80) return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7) return c + 0x20;
    if (c < 0x100) return c;
    if (c >= 0x100 && c <= 0x12F) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x130) return 'i';  // full mapping handled by the caller
    if (c >= 0x132 && c <= 0x137) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x139 && c <= 0x148) return (c % 2 == 1) ? c + 1 : c;
    if (c >= 0x14A && c <= 0x177) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x178) return 0xFF;
    if (c >= 0x179 && c <= 0x17E) return (c % 2 == 1) ? c + 1 : c;
    if (c == 0x1C4 || c == 0x1C5) return 0x1C6;
    if (c == 0x1C7 || c == 0x1C8) return 0x1C9;
    if (c == 0x1CA || c == 0x1CB) return 0x1CC;
    if (c >= 0x1CD && c <= 0x1DC) return (c % 2 == 1) ? c + 1 : c;
    if (c >= 0x1DE && c <= 0x1EF) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x1F1 || c == 0x1F2) return 0x1F3;
    if (c == 0x1F4) return 0x1F5;
    if (c >= 0x1F8 && c <= 0x21F) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x222 && c <= 0x233) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 0x25;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 0x3F;
    if (c >= 0x391 && c <= 0x3AB && c != 0x3A2) return c + 0x20;
    if (c >= 0x3D8 && c <= 0x3EF) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x400 && c <= 0x40F) return c + 0x50;
    if (c >= 0x410 && c <= 0x42F) return c + 0x20;
    if (c >= 0x460 && c <= 0x481) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x48A && c <= 0x4BF) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x4C0) return 0x4CF;
    if (c >= 0x4C1 && c <= 0x4CE) return (c % 2 == 1) ? c + 1 : c;
    if (c >= 0x4D0 && c <= 0x52F) return (c % 2 == 0) ? c + 1 : c;
    if (c >= 0x1E00 && c <= 0x1E95) return (c % 2 == 0) ? c + 1 : c;
    if (c == 0x1E9E) return 0xDF;
    if (c >= 0x1EA0 && c <= 0x1EFF) return (c % 2 == 0) ? c + 1 : c;
    return c;
}

// Simple upper-case mapping; returns c when there is none (multi-character cases handled by callers).
char32_t upper1(char32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') ? c - 32 : c;
    if (c >= 0xE0 && c <= 0xFE && c != 0xF7) return c - 0x20;
    if (c == 0xB5) return 0x39C;
    if (c == 0xFF) return 0x178;
    if (c < 0x100) return c;
    if (c >= 0x100 && c <= 0x12F) return (c % 2 == 1) ? c - 1 : c;
    if (c == 0x131) return 'I';
    if (c >= 0x132 && c <= 0x137) return (c % 2 == 1) ? c - 1 : c;
    if (c >= 0x139 && c <= 0x148) return (c % 2 == 0) ? c - 1 : c;
    if (c >= 0x14A && c <= 0x177) return (c % 2 == 1) ? c - 1 : c;
    if (c >= 0x179 && c <= 0x17E) return (c % 2 == 0) ? c - 1 : c;
    if (c == 0x17F) return 'S';
    if (c == 0x1C5 || c == 0x1C6) return 0x1C4;
    if (c == 0x1C8 || c == 0x1C9) return 0x1C7;
    if (c == 0x1CB || c == 0x1CC) return 0x1CA;
    if (c >= 0x1CD && c <= 0x1DC) return (c % 2 == 0) ? c - 1 : c;
    if (c >= 0x1DE && c <= 0x1EF) return (c % 2 == 1) ? c - 1 : c;
    if (c == 0x1F2 || c == 0x1F3) return 0x1F1;
    if (c == 0x1F5) return 0x1F4;
    if (c >= 0x1F8 && c <= 0x21F) return (c % 2 == 1) ? c - 1 : c;
    if (c >= 0x222 && c <= 0x233) return (c % 2 == 1) ? c - 1 : c;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 0x25;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x3B1 && c <= 0x3CB) return c - 0x20;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 0x3F;
    if (c >= 0x3D8 && c <= 0x3EF) return (c % 2 == 1) ? c - 1 : c;
    if (c >= 0x430 && c <= 0x44F) return c - 0x20;
    if (c >= 0x450 && c <= 0x45F) return c - 0x50;
    if (c >= 0x460 && c <= 0x481) return (c % 2 == 1) ? c - 1 : c;
    if (c >= 0x48A && c <= 0x4BF) return (c % 2 == 1) ? c - 1 : c;
    if (c == 0x4CF) return 0x4C0;
    if (c >= 0x4C1 && c <= 0x4CE) return (c % 2 == 0) ? c - 1 : c;
    if (c >= 0x4D0 && c <= 0x52F) return (c % 2 == 1) ? c - 1 : c;
    if (c >= 0x1E00 && c <= 0x1E95) return (c % 2 == 1) ? c - 1 : c;
    if (c >= 0x1EA0 && c <= 0x1EFF) return (c % 2 == 1) ? c - 1 : c;
    return c;
}

bool is_cased(char32_t c) {
    if (lower1(c) != c || upper1(c) != c) return true;
    return c == 0x138 || c == 0xDF || c == 0x149 || c == 0x390 || c == 0x3B0 || c == 0xAA || c == 0xBA;
}

bool case_ignorable(char32_t c) {
    return c == '\'' || c == '.' || c == ':' || c == '^' || c == '`' || c == 0xA8 || c == 0xAD || c == 0xAF ||
           c == 0xB4 || c == 0xB7 || c == 0xB8 || c == 0x2019 || (c >= 0x300 && c <= 0x36F);
}

// Python's final-sigma condition for U+03A3 at position i.
bool final_sigma(const std::u32string &s, size_t i) {
    size_t j = i;
    bool before = false;
    while (j > 0) {
        --j;
        if (case_ignorable(s[j])) continue;
        before = is_cased(s[j]);
        break;
    }
    if (!before) return false;
    for (size_t k = i + 1; k < s.size(); ++k) {
        if (case_ignorable(s[k])) continue;
        return !is_cased(s[k]);
    }
    return true;
}

void lower_full(const std::u32string &s, size_t i, std::u32string &out) {
    const char32_t c = s[i];
    if (c == 0x130) {
        out.push_back('i');
        out.push_back(0x307);
    } else if (c == 0x3A3) {
        out.push_back(final_sigma(s, i) ? 0x3C2 : 0x3C3);
    } else {
        out.push_back(lower1(c));
    }
}

void upper_full(char32_t c, std::u32string &out) {
    switch (c) {
        case 0xDF: out += U"SS"; return;
        case 0x149: out += U"\u02BCN"; return;
        case 0x390: out += U"\u0399\u0308\u0301"; return;
        case 0x3B0: out += U"\u03A5\u0308\u0301"; return;
        default: out.push_back(upper1(c));
    }
}

void title_full(char32_t c, std::u32string &out) {
    switch (c) {
        case 0xDF: out += U"Ss"; return;
        case 0x1C4: case 0x1C5: case 0x1C6: out.push_back(0x1C5); return;
        case 0x1C7: case 0x1C8: case 0x1C9: out.push_back(0x1C8); return;
        case 0x1CA: case 0x1CB: case 0x1CC: out.push_back(0x1CB); return;
        case 0x1F1: case 0x1F2: case 0x1F3: out.push_back(0x1F2); return;
        default: upper_full(c, out);
    }
}

}  // namespace

bool py_iscased_upper(char32_t c) {
    if (c == 0x1C5 || c == 0x1C8 || c == 0x1CB || c == 0x1F2) return false;  // titlecase
    return lower1(c) != c || c == 0x130;
}

bool py_iscased_lower(char32_t c) {
    if (c == 0x1C5 || c == 0x1C8 || c == 0x1CB || c == 0x1F2) return false;
    return upper1(c) != c || c == 0x138 || c == 0xDF || c == 0x149 || c == 0x390 || c == 0x3B0 || c == 0xAA ||
           c == 0xBA;
}

bool py_isalpha(char32_t c) {
    if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (c == 0xAA || c == 0xB5 || c == 0xBA) return true;
    if (c >= 0xC0 && c <= 0x2AF) return c != 0xD7 && c != 0xF7;
    if (c >= 0x370 && c <= 0x3FF)
        return c != 0x375 && c != 0x37E && c != 0x384 && c != 0x385 && c != 0x387 && c != 0x3F6 &&
               !(c >= 0x378 && c <= 0x379) && !(c >= 0x380 && c <= 0x383) && c != 0x38B && c != 0x38D &&
               c != 0x3A2;
    if (c >= 0x400 && c <= 0x52F) return !(c >= 0x482 && c <= 0x489);
    if (c >= 0x1E00 && c <= 0x1FFF) return true;
    return is_cased(c);
}

bool py_isdigit(char32_t c) { return (c >= '0' && c <= '9') || c == 0xB2 || c == 0xB3 || c == 0xB9; }

std::string py_upper(std::string_view s) {
    std::u32string in = to_u32(s), out;
    for (char32_t c : in) upper_full(c, out);
    return to_utf8(out);
}

std::string py_lower(std::string_view s) {
    std::u32string in = to_u32(s), out;
    for (size_t i = 0; i < in.size(); ++i) lower_full(in, i, out);
    return to_utf8(out);
}

std::string py_capitalize(std::string_view s) {
    std::u32string in = to_u32(s), out;
    for (size_t i = 0; i < in.size(); ++i) {
        if (i == 0)
            title_full(in[0], out);
        else
            lower_full(in, i, out);
    }
    return to_utf8(out);
}

std::string py_title(std::string_view s) {
    std::u32string in = to_u32(s), out;
    bool prev_cased = false;
    for (size_t i = 0; i < in.size(); ++i) {
        if (prev_cased)
            lower_full(in, i, out);
        else
            title_full(in[i], out);
        prev_cased = is_cased(in[i]);
    }
    return to_utf8(out);
}

std::string py_swapcase(std::string_view s) {
    std::u32string in = to_u32(s), out;
    for (size_t i = 0; i < in.size(); ++i) {
        if (py_iscased_upper(in[i]))
            lower_full(in, i, out);
        else if (py_iscased_lower(in[i]))
            upper_full(in[i], out);
        else
            out.push_back(in[i]);
    }
    return to_utf8(out);
}

std::string py_strip(std::string_view s, const std::string *chars, bool left, bool right) {
    std::u32string in = to_u32(s);
    std::u32string set;
    if (chars) set = to_u32(*chars);
    auto strip_me = [&](char32_t c) { return chars ? set.find(c) != std::u32string::npos : py_isspace(c); };
    size_t b = 0, e = in.size();
    if (left)
        while (b < e && strip_me(in[b])) ++b;
    if (right)
        while (e > b && strip_me(in[e - 1])) --e;
    return to_utf8(std::u32string_view(in).substr(b, e - b));
}

}  // namespace eurollm::chat::jinja
