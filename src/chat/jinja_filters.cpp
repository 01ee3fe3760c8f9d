#include "chat/jinja_filters.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

#include "chat/jinja_error.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_methods.h"
#include "chat/jinja_unicode.h"

namespace eurollm::chat::jinja {

namespace {

const char *const kFilters[] = {"abs",     "attr",     "capitalize", "center", "count",   "d",        "default", "dictsort",
                                "e",       "escape",   "first",      "float",  "forceescape", "format", "indent", "int",
                                "items",   "join",     "last",       "length", "list",    "lower",    "map",     "max",
                                "min",     "reject",   "rejectattr", "replace", "reverse", "round",   "safe",    "select",
                                "selectattr", "sort",  "string",     "sum",    "title",   "tojson",   "trim",    "unique",
                                "upper",   "wordcount"};
const char *const kUnsupportedFilters[] = {"batch",    "filesizeformat", "groupby", "pprint",   "random",  "slice",
                                           "striptags", "truncate",      "urlencode", "urlize", "wordwrap", "xmlattr"};
const char *const kTests[] = {"boolean", "callable", "defined", "divisibleby", "eq",      "equalto", "escaped", "even",
                              "false",   "filter",   "float",   "ge",          "gt",      "greaterthan", "in", "integer",
                              "iterable", "le",      "lessthan", "lower",      "lt",      "mapping", "ne",      "none",
                              "number",  "odd",      "sameas",  "sequence",    "string",  "test",    "true",    "undefined",
                              "upper",   "==",       "!=",      "<",           "<=",      ">",       ">="};

template <size_t N>
bool listed(const char *const (&names)[N], const std::string &name) {
    for (const char *n : names)
        if (name == n) return true;
    return false;
}

std::string soft_str(const Value &v) { return py_str(v); }

// A filter result that stays Markup when its input was Markup.
Value same_kind(const Value &input, std::string s) {
    return input.is_markup() ? Value::markup(std::move(s)) : Value::string(std::move(s));
}

// Attribute getter of jinja's make_attrgetter: dotted path, integer parts index.
Value attr_path(Interpreter &in, const Value &item, const Value &attribute, const Value *def = nullptr) {
    std::vector<Value> parts;
    if (attribute.is_string()) {
        const std::string &a = attribute.str();
        size_t start = 0;
        for (;;) {
            const size_t dot = a.find('.', start);
            std::string part = a.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
            if (!part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; }))
                parts.push_back(Value::integer(std::stoll(part)));
            else
                parts.push_back(Value::string(part));
            if (dot == std::string::npos) break;
            start = dot + 1;
        }
    } else {
        parts.push_back(attribute);
    }
    Value cur = item;
    for (const Value &p : parts) {
        cur = in.getitem(cur, p);
        if (cur.is_undefined() && def) return *def;
    }
    return cur;
}

Value sort_key(const Value &v, bool case_sensitive) {
    if (!case_sensitive && v.is_string()) return Value::string(py_lower(v.str()));
    return v;
}

std::vector<Value> items_of(const Value &v) { return py_iterate(v); }

Value do_default(ArgBinder &b, const Value &input) {
    const Value def = b.get_or(0, Value::string(""));
    const bool boolean = b.has(1) && b.get(1).truthy();
    if (input.is_undefined() || (boolean && !input.truthy())) return def;
    return input;
}

Value do_first_last(const Value &input, bool first) {
    if (input.is_undefined()) return Value::undefined("No first item, sequence was empty.");
    std::vector<Value> items = items_of(input);
    if (items.empty()) return Value::undefined(first ? "No first item, sequence was empty." : "No last item, sequence was empty.");
    return first ? items.front() : items.back();
}

Value do_tojson(Interpreter &, ArgBinder &b, const Value &input) {
    // transformers: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
    json_options o;
    o.ensure_ascii = b.has(0) && b.get(0).truthy();
    if (b.has(1) && !b.get(1).is_none()) {
        const Value &ind = b.get(1);
        if (ind.is_string())
            o.indent = ind.str();
        else if (ind.is_int() || ind.is_bool())
            o.indent = std::string(static_cast<size_t>(std::max<int64_t>(0, std::min<int64_t>(ind.as_int(), 1024))), ' ');
        else
            type_error("tojson: indent must be an integer or a string, not ", type_name(ind));
        o.item_separator = ",";
    }
    if (b.has(2) && !b.get(2).is_none()) {
        const Value &sep = b.get(2);
        if (!sep.is_list() || sep.items().size() != 2 || !sep.items()[0].is_string() || !sep.items()[1].is_string())
            type_error("tojson: separators must be a pair of strings");
        o.item_separator = sep.items()[0].str();
        o.key_separator = sep.items()[1].str();
    }
    o.sort_keys = b.has(3) && b.get(3).truthy();
    return Value::string(py_json_dumps(input, o));
}

// Jinja's title filter: capitalize each piece of re.split(r"([-\s({\[<]+)", s).
std::string jinja_title(const std::string &s) {
    std::u32string u = to_u32(s);
    auto is_sep = [](char32_t c) { return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || py_isspace(c); };
    std::string out;
    size_t k = 0;
    while (k < u.size()) {
        size_t j = k;
        const bool sep = is_sep(u[k]);
        while (j < u.size() && is_sep(u[j]) == sep) ++j;
        const std::u32string piece = u.substr(k, j - k);
        if (sep) {
            out += to_utf8(piece);
        } else {
            std::string first, rest;
            append_utf8(first, piece[0]);
            out += py_upper(first) + py_lower(to_utf8(piece.substr(1)));
        }
        k = j;
    }
    return out;
}

// printf-style `format` filter / `%` operator subset: %s %r %d %i %f %F %e %g %x %o %c %%.
}  // namespace

std::string py_percent_format(const std::string &fmt, const std::vector<Value> &args, bool lenient) {
    std::string out;
    size_t ai = 0;
    for (size_t i = 0; i < fmt.size(); ++i) {
        if (fmt[i] != '%') {
            out += fmt[i];
            continue;
        }
        size_t j = i + 1;
        std::string spec = "%";
        while (j < fmt.size() && std::strchr("-+ #0", fmt[j])) spec += fmt[j++];
        while (j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j]))) spec += fmt[j++];
        if (j < fmt.size() && fmt[j] == '.') {
            spec += fmt[j++];
            while (j < fmt.size() && std::isdigit(static_cast<unsigned char>(fmt[j]))) spec += fmt[j++];
        }
        if (j >= fmt.size()) type_error("incomplete format");
        const char conv = fmt[j];
        i = j;
        if (conv == '%') {
            out += '%';
            continue;
        }
        if (ai >= args.size()) type_error("not enough arguments for format string");
        const Value &v = args[ai++];
        char buf[512];
        switch (conv) {
            case 's':
            case 'r': {
                const std::string s = conv == 's' ? py_str(v) : py_repr(v);
                if (spec == "%") {
                    out += s;
                } else {
                    std::snprintf(buf, sizeof buf, (spec + "s").c_str(), s.c_str());
                    out += buf;
                }
                break;
            }
            case 'd':
            case 'i':
            case 'x':
            case 'X':
            case 'o': {
                if (!v.is_number()) type_error("%", conv, " format: a real number is required, not ", type_name(v));
                const long long n = v.is_float() ? static_cast<long long>(std::trunc(v.as_double())) : v.as_int();
                std::snprintf(buf, sizeof buf, (spec + "ll" + (conv == 'i' ? 'd' : conv)).c_str(), n);
                out += buf;
                break;
            }
            case 'f':
            case 'F':
            case 'e':
            case 'E':
            case 'g':
            case 'G':
                if (!v.is_number()) type_error("must be real number, not ", type_name(v));
                std::snprintf(buf, sizeof buf, (spec + conv).c_str(), v.as_double());
                out += buf;
                break;
            case 'c':
                if (v.is_int()) {
                    append_utf8(out, static_cast<char32_t>(v.as_int()));
                } else if (v.is_string() && utf8_length(v.str()) == 1) {
                    out += v.str();
                } else {
                    type_error("%c requires int or char");
                }
                break;
            default: type_error("unsupported format character '", conv, "'");
        }
    }
    if (ai < args.size() && !lenient) type_error("not all arguments converted during string formatting");
    return out;
}

namespace {

Value select_like(Interpreter &in, const std::string &name, const Value &input, CallArgs &args) {
    const bool is_attr = name == "selectattr" || name == "rejectattr";
    const bool reject = name == "reject" || name == "rejectattr";
    std::vector<Value> rest = args.positional;
    Value attribute;
    if (is_attr) {
        if (rest.empty()) type_error(name, "() requires an attribute name");
        attribute = rest.front();
        rest.erase(rest.begin());
    }
    std::string test;
    if (!rest.empty()) {
        if (!rest.front().is_string()) type_error(name, "(): the test name must be a string");
        test = rest.front().str();
        rest.erase(rest.begin());
        if (test_availability(test) != Availability::Supported) type_error("no test named '", test, "'");
    }
    std::vector<Value> out;
    if (!input.truthy()) return Value::list(std::move(out));  // jinja: `if value:` before iterating
    for (const Value &item : items_of(input)) {
        const Value subject = is_attr ? attr_path(in, item, attribute) : item;
        bool ok;
        if (test.empty()) {
            ok = subject.truthy();
        } else {
            CallArgs targs;
            targs.positional = rest;
            targs.keyword = args.keyword;
            ok = apply_test(in, test, subject, targs);
        }
        if (ok != reject) out.push_back(item);
    }
    return Value::list(std::move(out));
}

Value do_map(Interpreter &in, const Value &input, CallArgs &args) {
    std::vector<Value> out;
    if (!input.truthy()) return Value::list(std::move(out));  // jinja: `if value:` before iterating
    const Value *attribute = nullptr;
    const Value *def = nullptr;
    for (const auto &kw : args.keyword) {
        if (kw.first == "attribute")
            attribute = &kw.second;
        else if (kw.first == "default")
            def = &kw.second;
    }
    if (attribute) {
        for (const Value &item : items_of(input)) out.push_back(attr_path(in, item, *attribute, def));
        return Value::list(std::move(out));
    }
    if (args.positional.empty() || !args.positional[0].is_string()) type_error("map() requires a filter name or attribute=");
    const std::string filter = args.positional[0].str();
    if (filter_availability(filter) != Availability::Supported) type_error("no filter named '", filter, "'");
    for (const Value &item : items_of(input)) {
        CallArgs fargs;
        fargs.positional.assign(args.positional.begin() + 1, args.positional.end());
        fargs.keyword = args.keyword;
        out.push_back(apply_filter(in, filter, item, fargs));
    }
    return Value::list(std::move(out));
}

Value do_sort(Interpreter &in, ArgBinder &b, const Value &input) {
    const bool reverse = b.has(0) && b.get(0).truthy();
    const bool cs = b.has(1) && b.get(1).truthy();
    std::vector<Value> items = items_of(input);
    std::vector<std::pair<Value, Value>> keyed;
    for (const Value &v : items) keyed.emplace_back(sort_key(b.has(2) && !b.get(2).is_none() ? attr_path(in, v, b.get(2)) : v, cs), v);
    std::stable_sort(keyed.begin(), keyed.end(), [reverse](const auto &x, const auto &y) {
        return reverse ? py_compare(y.first, x.first) < 0 : py_compare(x.first, y.first) < 0;
    });
    std::vector<Value> out;
    for (auto &kv : keyed) out.push_back(std::move(kv.second));
    return Value::list(std::move(out));
}

Value do_minmax(Interpreter &in, ArgBinder &b, const Value &input, bool is_max) {
    const bool cs = b.has(0) && b.get(0).truthy();
    std::vector<Value> items = items_of(input);
    if (items.empty()) return Value::undefined(std::string("No aggregated item, sequence was empty."));
    size_t best = 0;
    auto key = [&](const Value &v) { return sort_key(b.has(1) && !b.get(1).is_none() ? attr_path(in, v, b.get(1)) : v, cs); };
    Value best_key = key(items[0]);
    for (size_t k = 1; k < items.size(); ++k) {
        Value kk = key(items[k]);
        const int c = py_compare(kk, best_key);
        if (is_max ? c > 0 : c < 0) {
            best = k;
            best_key = kk;
        }
    }
    return items[best];
}

Value do_int(const Value &input, ArgBinder &b) {
    if (input.is_undefined()) fail_undefined(input);  // Undefined.__int__ raises
    const Value def = b.get_or(0, Value::integer(0));
    const int64_t base = b.has(1) ? need_int(b, 1, "base") : 10;
    if (input.is_int() || input.is_bool()) return Value::integer(input.as_int());
    if (input.is_float()) {
        const double d = input.as_double();
        if (!std::isfinite(d)) return def;  // int(inf) / int(nan) fail, the default is used
        if (std::fabs(d) >= 9.2e18) type_error("int: ", py_float_repr(d), " is too large (the limit is 64-bit)");
        return Value::integer(static_cast<int64_t>(std::trunc(d)));
    }
    if (input.is_string()) {
        std::string s = py_strip(input.str(), nullptr, true, true);
        std::string t;
        for (char c : s)
            if (c != '_') t += c;
        if (!t.empty()) {
            char *end = nullptr;
            errno = 0;
            const long long v = std::strtoll(t.c_str(), &end, static_cast<int>(base));
            if (errno == 0 && end && *end == '\0') return Value::integer(v);
            errno = 0;
            const double d = std::strtod(t.c_str(), &end);
            if (errno == 0 && end && *end == '\0' && std::isfinite(d)) {
                if (std::fabs(d) >= 9.2e18) type_error("int: ", s, " is too large (the limit is 64-bit)");
                return Value::integer(static_cast<int64_t>(std::trunc(d)));
            }
        }
    }
    return def;
}

Value do_float(const Value &input, ArgBinder &b) {
    if (input.is_undefined()) fail_undefined(input);  // Undefined.__float__ raises
    const Value def = b.get_or(0, Value::number(0.0));
    if (input.is_number()) return Value::number(input.as_double());
    if (input.is_string()) {
        std::string s = py_strip(input.str(), nullptr, true, true);
        std::string lower = py_lower(s);
        if (lower == "nan" || lower == "+nan" || lower == "-nan") return Value::number(std::nan(""));
        if (lower == "inf" || lower == "+inf" || lower == "infinity" || lower == "+infinity")
            return Value::number(std::numeric_limits<double>::infinity());
        if (lower == "-inf" || lower == "-infinity") return Value::number(-std::numeric_limits<double>::infinity());
        if (!s.empty()) {
            char *end = nullptr;
            const double d = std::strtod(s.c_str(), &end);
            if (end && *end == '\0' && s.find_first_of("xXpP") == std::string::npos) return Value::number(d);
        }
    }
    return def;
}

Value do_round(ArgBinder &b, const Value &input) {
    const int64_t precision = b.has(0) ? need_int(b, 0, "precision") : 0;
    const std::string method = b.has(1) ? need_str(b, 1, "method") : "common";
    if (!input.is_number()) type_error("round: a number is required, not ", type_name(input));
    const double v = input.as_double();
    if (method == "common") {
        if (input.is_int() || input.is_bool()) {
            if (precision >= 0) return Value::integer(input.as_int());
        }
        // Python round(x, n): correctly rounded, ties to even on the exact binary value.
        if (!std::isfinite(v)) return Value::number(v);
        char buf[512];
        if (precision >= 0 && precision <= 300) {
            std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(precision), v);
            return Value::number(std::strtod(buf, nullptr));
        }
        type_error("round: precision out of the supported range");
    }
    if (method != "floor" && method != "ceil") type_error("method must be common, ceil or floor");
    const double p = std::pow(10.0, static_cast<double>(precision));
    return Value::number((method == "ceil" ? std::ceil(v * p) : std::floor(v * p)) / p);
}

Value do_indent(ArgBinder &b, const Value &input) {
    std::string width = "    ";
    if (b.has(0)) {
        const Value &w = b.get(0);
        if (w.is_string())
            width = w.str();
        else
            width = std::string(static_cast<size_t>(std::clamp<int64_t>(need_int(b, 0, "width"), 0, 1024)), ' ');
    }
    const bool first = b.has(1) && b.get(1).truthy();
    const bool blank = b.has(2) && b.get(2).truthy();
    if (input.is_undefined()) fail_undefined(input);
    if (!input.is_string()) type_error("unsupported operand type(s) for +=: '", type_name(input), "' and 'str'");
    std::string s = input.str();
    const std::string newline = "\n";
    s += newline;  // jinja appends and strips a newline so that a trailing blank line is handled
    std::vector<std::string> lines;
    // str.splitlines() semantics
    {
        std::u32string u = to_u32(s);
        size_t start = 0;
        for (size_t k = 0; k < u.size(); ++k) {
            const char32_t c = u[k];
            if (c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
                c == 0x2028 || c == 0x2029) {
                lines.push_back(to_utf8(u.substr(start, k - start)));
                if (c == '\r' && k + 1 < u.size() && u[k + 1] == '\n') ++k;
                start = k + 1;
            }
        }
        if (start < u.size()) lines.push_back(to_utf8(u.substr(start)));
    }
    std::string rv;
    if (blank) {
        for (size_t k = 0; k < lines.size(); ++k) {
            if (k) rv += newline + width;
            rv += lines[k];
        }
    } else {
        if (!lines.empty()) rv = lines[0];
        for (size_t k = 1; k < lines.size(); ++k) {
            rv += newline;
            if (!lines[k].empty()) rv += width;
            rv += lines[k];
        }
    }
    if (first) rv = width + rv;
    return Value::string(rv);
}

Value do_dictsort(ArgBinder &b, const Value &input) {
    if (!input.is_dict()) type_error("dictsort: a dict is required, not ", type_name(input));
    const bool cs = b.has(0) && b.get(0).truthy();
    const std::string by = b.has(1) ? need_str(b, 1, "by") : "key";
    const bool reverse = b.has(2) && b.get(2).truthy();
    if (by != "key" && by != "value") type_error("You can only sort by either 'key' or 'value'");
    std::vector<std::pair<Value, Value>> entries = input.dict_data().entries;
    std::stable_sort(entries.begin(), entries.end(), [&](const auto &x, const auto &y) {
        const Value kx = sort_key(by == "key" ? x.first : x.second, cs);
        const Value ky = sort_key(by == "key" ? y.first : y.second, cs);
        return reverse ? py_compare(ky, kx) < 0 : py_compare(kx, ky) < 0;
    });
    std::vector<Value> out;
    for (auto &kv : entries) out.push_back(Value::list({kv.first, kv.second}, true));
    return Value::list(std::move(out));
}

Value do_unique(Interpreter &in, ArgBinder &b, const Value &input) {
    const bool cs = b.has(0) && b.get(0).truthy();
    std::vector<Value> out;
    DictData seen;
    for (const Value &v : items_of(input)) {
        const Value key = sort_key(b.has(1) && !b.get(1).is_none() ? attr_path(in, v, b.get(1)) : v, cs);
        if (seen.find(key)) continue;
        seen.set(key, Value::none());
        out.push_back(v);
    }
    return Value::list(std::move(out));
}

Value do_sum(Interpreter &in, ArgBinder &b, const Value &input) {
    Value total = b.get_or(1, Value::integer(0));
    for (const Value &v : items_of(input)) {
        const Value item = b.has(0) && !b.get(0).is_none() ? attr_path(in, v, b.get(0)) : v;
        total = py_binary(in, "+", total, item);
    }
    return total;
}

Value do_join(Interpreter &in, ArgBinder &b, const Value &input) {
    const std::string sep = b.has(0) ? soft_str(b.get(0)) : std::string();
    std::string out;
    size_t k = 0;
    for (const Value &v : items_of(input)) {
        const Value item = b.has(1) && !b.get(1).is_none() ? attr_path(in, v, b.get(1)) : v;
        if (k++) out += sep;
        out += soft_str(item);
        in.check_string_size(out.size());
    }
    return Value::string(std::move(out));
}

Value do_center(ArgBinder &b, const Value &input) {
    const int64_t width = b.has(0) ? need_int(b, 0, "width") : 80;
    std::u32string u = to_u32(soft_str(input));
    const int64_t len = static_cast<int64_t>(u.size());
    if (width <= len) return Value::string(soft_str(input));
    if (width > (int64_t(1) << 24)) type_error("center: width too large");
    const size_t pad = static_cast<size_t>(width - len);
    const size_t left = pad / 2 + (pad & static_cast<size_t>(width) & 1);
    return Value::string(std::string(left, ' ') + soft_str(input) + std::string(pad - left, ' '));
}

int64_t word_count(const std::string &s) {
    int64_t n = 0;
    bool in_word = false;
    for (char32_t c : to_u32(s)) {
        const bool w = py_isalpha(c) || py_isdigit(c) || c == '_' || (c >= 0x80 && !py_isspace(c) && py_isprintable(c) &&
                                                                       !(c >= 0x2000 && c <= 0x206F) && !(c >= 0xA1 && c <= 0xBF));
        if (w && !in_word) ++n;
        in_word = w;
    }
    return n;
}

}  // namespace

Availability filter_availability(const std::string &name) {
    if (listed(kFilters, name)) return Availability::Supported;
    if (listed(kUnsupportedFilters, name)) return Availability::Unsupported;
    return Availability::Unknown;
}

Availability test_availability(const std::string &name) {
    return listed(kTests, name) ? Availability::Supported : Availability::Unknown;
}

Value apply_filter(Interpreter &in, const std::string &name, const Value &input, CallArgs &args) {
    const std::string fname = name;
    switch (filter_availability(name)) {  // reached only from an if / inline-if branch (see check_names)
        case Availability::Unknown: type_error("no filter named '", name, "' found");
        case Availability::Unsupported: type_error("the filter '", name, "' is not supported in chat templates");
        default: break;
    }
    if (name == "default" || name == "d") {
        ArgBinder b(fname, args, {"default_value", "boolean"});
        return do_default(b, input);
    }
    if (name == "length" || name == "count") {
        ArgBinder b(fname, args, {});
        return Value::integer(py_len(input));
    }
    if (name == "tojson") {
        ArgBinder b(fname, args, {"ensure_ascii", "indent", "separators", "sort_keys"});
        return do_tojson(in, b, input);
    }
    if (name == "trim") {
        ArgBinder b(fname, args, {"chars"});
        const std::string *chars = nullptr;
        std::string cs;
        if (b.has(0) && !b.get(0).is_none()) {
            cs = need_str(b, 0, "chars");
            chars = &cs;
        }
        return same_kind(input, py_strip(soft_str(input), chars, true, true));
    }
    // soft_str keeps Markup, and Markup's methods return Markup
    if (name == "upper") return ArgBinder(fname, args, {}), same_kind(input, py_upper(soft_str(input)));
    if (name == "lower") return ArgBinder(fname, args, {}), same_kind(input, py_lower(soft_str(input)));
    if (name == "capitalize") return ArgBinder(fname, args, {}), same_kind(input, py_capitalize(soft_str(input)));
    if (name == "title") return ArgBinder(fname, args, {}), Value::string(jinja_title(soft_str(input)));
    if (name == "string") return ArgBinder(fname, args, {}), same_kind(input, soft_str(input));
    if (name == "safe") return ArgBinder(fname, args, {}), Value::markup(soft_str(input));
    if (name == "e" || name == "escape")
        return ArgBinder(fname, args, {}), input.is_markup() ? input : Value::markup(html_escape(soft_str(input)));
    if (name == "forceescape") return ArgBinder(fname, args, {}), Value::markup(html_escape(soft_str(input)));
    if (name == "replace") {
        ArgBinder b(fname, args, {"old", "new", "count"});
        if (!b.has(1)) type_error("replace() requires 'old' and 'new'");
        const int64_t count = b.has(2) && !b.get(2).is_none() ? need_int(b, 2, "count") : -1;
        std::string r = py_replace(soft_str(input), soft_str(b.get(0)), soft_str(b.get(1)), count);
        in.check_string_size(r.size());
        return Value::string(std::move(r));
    }
    if (name == "first" || name == "last") return ArgBinder(fname, args, {}), do_first_last(input, name == "first");
    if (name == "join") {
        ArgBinder b(fname, args, {"d", "attribute"});
        return do_join(in, b, input);
    }
    if (name == "list") return ArgBinder(fname, args, {}), Value::list(items_of(input));
    if (name == "items") {
        ArgBinder b(fname, args, {});
        if (input.is_undefined()) return Value::list({});
        if (!input.is_dict()) type_error("items: can only get item pairs from a mapping, not ", type_name(input));
        std::vector<Value> out;
        for (const auto &kv : input.dict_data().entries) out.push_back(Value::list({kv.first, kv.second}, true));
        return Value::list(std::move(out));
    }
    if (name == "reverse") {
        ArgBinder b(fname, args, {});
        if (input.is_string()) {
            std::u32string u = to_u32(input.str());
            std::reverse(u.begin(), u.end());
            return Value::string(to_utf8(u));
        }
        std::vector<Value> items = items_of(input);
        std::reverse(items.begin(), items.end());
        return Value::list(std::move(items));
    }
    if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr")
        return select_like(in, name, input, args);
    if (name == "map") return do_map(in, input, args);
    if (name == "sort") {
        ArgBinder b(fname, args, {"reverse", "case_sensitive", "attribute"});
        return do_sort(in, b, input);
    }
    if (name == "dictsort") {
        ArgBinder b(fname, args, {"case_sensitive", "by", "reverse"});
        return do_dictsort(b, input);
    }
    if (name == "unique") {
        ArgBinder b(fname, args, {"case_sensitive", "attribute"});
        return do_unique(in, b, input);
    }
    if (name == "min" || name == "max") {
        ArgBinder b(fname, args, {"case_sensitive", "attribute"});
        return do_minmax(in, b, input, name == "max");
    }
    if (name == "sum") {
        ArgBinder b(fname, args, {"attribute", "start"});
        return do_sum(in, b, input);
    }
    if (name == "int") {
        ArgBinder b(fname, args, {"default", "base"});
        return do_int(input, b);
    }
    if (name == "float") {
        ArgBinder b(fname, args, {"default"});
        return do_float(input, b);
    }
    if (name == "abs") {
        ArgBinder b(fname, args, {});
        if (input.is_float()) return Value::number(std::fabs(input.as_double()));
        if (input.is_int() || input.is_bool()) {
            if (input.as_int() == std::numeric_limits<int64_t>::min()) type_error("integer overflow in abs");
            return Value::integer(input.as_int() < 0 ? -input.as_int() : input.as_int());
        }
        type_error("bad operand type for abs(): '", type_name(input), "'");
    }
    if (name == "round") {
        ArgBinder b(fname, args, {"precision", "method"});
        return do_round(b, input);
    }
    if (name == "attr") {
        ArgBinder b(fname, args, {"name"});
        if (!b.has(0)) type_error("attr() requires a name");
        return in.getattr(input, need_str(b, 0, "name"));
    }
    if (name == "format") {
        if (!args.keyword.empty() && !args.positional.empty())
            type_error("can't handle positional and keyword arguments at the same time");
        if (!args.keyword.empty()) type_error("format with keyword arguments is not supported in chat templates");
        std::string r = py_percent_format(soft_str(input), args.positional, false);
        in.check_string_size(r.size());
        return Value::string(std::move(r));
    }
    if (name == "indent") {
        ArgBinder b(fname, args, {"width", "first", "blank"});
        return do_indent(b, input);
    }
    if (name == "center") {
        ArgBinder b(fname, args, {"width"});
        return do_center(b, input);
    }
    if (name == "wordcount") return ArgBinder(fname, args, {}), Value::integer(word_count(soft_str(input)));
    type_error("no filter named '", name, "'");
}

bool apply_test(Interpreter &in, const std::string &name, const Value &v, CallArgs &args) {
    const std::string fname = "test '" + name + "'";
    if (test_availability(name) != Availability::Supported) type_error("no test named '", name, "' found");
    auto one = [&](const char *param) -> const Value & {
        ArgBinder b(fname, args, {param});
        if (!b.has(0)) type_error(fname, " requires an argument");
        return args.positional.empty() ? args.keyword[0].second : args.positional[0];
    };
    if (name == "defined") return ArgBinder(fname, args, {}), !v.is_undefined();
    if (name == "undefined") return ArgBinder(fname, args, {}), v.is_undefined();
    if (name == "none") return ArgBinder(fname, args, {}), v.is_none();
    if (name == "boolean") return ArgBinder(fname, args, {}), v.is_bool();
    if (name == "true") return ArgBinder(fname, args, {}), v.is_bool() && v.as_bool();
    if (name == "false") return ArgBinder(fname, args, {}), v.is_bool() && !v.as_bool();
    if (name == "integer") return ArgBinder(fname, args, {}), v.is_int();
    if (name == "float") return ArgBinder(fname, args, {}), v.is_float();
    if (name == "number") return ArgBinder(fname, args, {}), v.is_number();
    if (name == "string") return ArgBinder(fname, args, {}), v.is_string();
    if (name == "mapping") return ArgBinder(fname, args, {}), v.is_dict();
    if (name == "iterable") return ArgBinder(fname, args, {}), v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
    if (name == "sequence")  // len() and __getitem__: not dict views
        return ArgBinder(fname, args, {}), v.is_string() || v.is_plain_list() || v.is_dict() || v.is_undefined() ||
                                               (v.is_list() && v.list_data().view == ListView::Range);
    if (name == "callable") return ArgBinder(fname, args, {}), v.is_function() || v.is_undefined();
    if (name == "escaped") return ArgBinder(fname, args, {}), false;
    if (name == "lower" || name == "upper") {
        ArgBinder b(fname, args, {});
        CallArgs none;
        const Value r = in.call(in.getattr(Value::string(soft_str(v)), name == "lower" ? "islower" : "isupper"), none);
        return r.truthy();
    }
    if (name == "odd" || name == "even") {
        ArgBinder b(fname, args, {});
        const Value r = py_binary(in, "%", v, Value::integer(2));
        return py_equal(r, Value::integer(name == "odd" ? 1 : 0));
    }
    if (name == "divisibleby") {
        const Value &num = one("num");
        return py_equal(py_binary(in, "%", v, num), Value::integer(0));
    }
    if (name == "in") return py_contains(one("seq"), v);
    if (name == "eq" || name == "equalto" || name == "==") return py_equal(v, one("other"));
    if (name == "ne" || name == "!=") return !py_equal(v, one("other"));
    if (name == "lt" || name == "lessthan" || name == "<") return py_compare(v, one("other"), "<") < 0;
    if (name == "le" || name == "<=") return py_compare(v, one("other"), "<=") <= 0;
    if (name == "gt" || name == "greaterthan" || name == ">") return py_compare(v, one("other"), ">") > 0;
    if (name == "ge" || name == ">=") return py_compare(v, one("other"), ">=") >= 0;
    if (name == "sameas") {
        const Value &other = one("other");
        if (v.kind() != other.kind()) return false;
        switch (v.kind()) {
            case Kind::None: return true;
            case Kind::Bool: return v.as_bool() == other.as_bool();
            case Kind::Int:
            case Kind::Float:
            case Kind::String: return py_equal(v, other);
            case Kind::Undefined: return false;
            default: return v.identity() == other.identity();
        }
    }
    if (name == "filter") return filter_availability(soft_str(one("name"))) == Availability::Supported;
    if (name == "test") return test_availability(soft_str(one("name"))) == Availability::Supported;
    type_error("no test named '", name, "'");
}

}  // namespace eurollm::chat::jinja
