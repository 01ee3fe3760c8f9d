#include <gtest/gtest.h>

#include "core/utf8.h"

using namespace eurollm;

TEST(Utf8, FirstInvalid) {
    EXPECT_EQ(utf8_first_invalid("plain"), std::string_view::npos);
    EXPECT_EQ(utf8_first_invalid("Grüße 🎉"), std::string_view::npos);
    EXPECT_EQ(utf8_first_invalid("ab\xFF"), 2u);
    EXPECT_EQ(utf8_first_invalid("\xC0\xAF"), 0u);          // overlong '/'
    EXPECT_EQ(utf8_first_invalid("\xED\xA0\x80"), 0u);      // UTF-16 surrogate
    EXPECT_EQ(utf8_first_invalid("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
    EXPECT_EQ(utf8_first_invalid("x\xE2\x82"), 1u);         // truncated
}

TEST(Utf8, CompletePrefixHoldsBackOnlyIncompleteTails) {
    EXPECT_EQ(utf8_complete_prefix("ab\xE2\x82"), 2u);
    EXPECT_EQ(utf8_complete_prefix("ab\xE2\x82\xAC"), 5u);
    EXPECT_EQ(utf8_complete_prefix("ab\xFF"), 3u);  // invalid bytes are not held forever
    EXPECT_EQ(utf8_complete_prefix("\xF0\x9F\x8E"), 0u);
}

TEST(Utf8, SanitizeReplacesInvalidBytes) {
    EXPECT_EQ(utf8_sanitize("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
    EXPECT_EQ(utf8_sanitize("ok"), "ok");
}
