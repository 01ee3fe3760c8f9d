#include "chat/jinja_methods.h"

#include <algorithm>
#include <cstring>

#include "chat/jinja_error.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_unicode.h"

namespace eurollm::chat::jinja {

// ---------------------------------------------------------------------------------------------
// argument binding

ArgBinder::ArgBinder(const std::string &fname, CallArgs &args, std::initializer_list<const char *> names)
    : fname_(fname), slots_(names.size(), nullptr) {
    if (args.positional.size() > names.size())
        type_error(fname, "() takes at most ", names.size(), " argument", names.size() == 1 ? "" : "s", " (",
                   args.positional.size(), " given)");
    for (size_t k = 0; k < args.positional.size(); ++k) slots_[k] = &args.positional[k];
    for (const auto &kw : args.keyword) {
        size_t idx = 0;
        for (const char *n : names) {
            if (kw.first == n) break;
            ++idx;
        }
        if (idx == names.size()) type_error(fname, "() got an unexpected keyword argument '", kw.first, "'");
        if (slots_[idx]) type_error(fname, "() got multiple values for argument '", kw.first, "'");
        slots_[idx] = &kw.second;
    }
}

const std::string &need_str(const ArgBinder &b, size_t i, const char *what) {
    const Value &v = b.get(i);
    if (!v.is_string()) type_error(b.fname(), "() ", what, " must be str, not ", type_name(v));
    return v.str();
}

int64_t need_int(const ArgBinder &b, size_t i, const char *what) {
    const Value &v = b.get(i);
    if (!v.is_int() && !v.is_bool()) type_error(b.fname(), "() ", what, " must be an integer, not ", type_name(v));
    return v.as_int();
}

namespace {

// Optional str argument: None or missing -> nullptr.
const std::string *opt_str(const ArgBinder &b, size_t i, const char *what) {
    if (!b.has(i) || b.get(i).is_none()) return nullptr;
    return &need_str(b, i, what);
}

// Python slice-index clamping for start/end arguments of find/count/startswith.
void clamp_range(const ArgBinder &b, size_t si, size_t ei, int64_t len, int64_t &start, int64_t &end) {
    start = 0;
    end = len;
    auto adj = [len](int64_t v) {
        if (v < 0) v += len;
        return std::clamp<int64_t>(v, 0, len);
    };
    if (b.has(si) && !b.get(si).is_none()) start = adj(need_int(b, si, "slice index"));
    if (b.has(ei) && !b.get(ei).is_none()) end = adj(need_int(b, ei, "slice index"));
}

int64_t find_sub(const std::u32string &s, const std::u32string &sub, int64_t start, int64_t end, bool reverse) {
    if (end - start < static_cast<int64_t>(sub.size())) return -1;
    if (!reverse) {
        for (int64_t k = start; k + static_cast<int64_t>(sub.size()) <= end; ++k)
            if (s.compare(static_cast<size_t>(k), sub.size(), sub) == 0) return k;
    } else {
        for (int64_t k = end - static_cast<int64_t>(sub.size()); k >= start; --k)
            if (s.compare(static_cast<size_t>(k), sub.size(), sub) == 0) return k;
    }
    return -1;
}

bool is_line_break(char32_t c) {
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D || c == 0x1E || c == 0x85 ||
           c == 0x2028 || c == 0x2029;
}

// str.format with auto/explicit numbering and names; format specs other than empty are refused.
std::string py_format(Interpreter &in, const std::string &fmt, CallArgs &args) {
    std::u32string f = to_u32(fmt);
    std::string out;
    size_t auto_index = 0;
    for (size_t i = 0; i < f.size(); ++i) {
        const char32_t c = f[i];
        if (c == '}') {
            if (i + 1 < f.size() && f[i + 1] == '}') {
                out += '}';
                ++i;
                continue;
            }
            type_error("Single '}' encountered in format string");
        }
        if (c != '{') {
            append_utf8(out, c);
            continue;
        }
        if (i + 1 < f.size() && f[i + 1] == '{') {
            out += '{';
            ++i;
            continue;
        }
        const size_t close = f.find('}', i);
        if (close == std::u32string::npos) type_error("Single '{' encountered in format string");
        std::string field = to_utf8(f.substr(i + 1, close - i - 1));
        i = close;
        char conversion = 0;
        const size_t bang = field.find('!');
        const size_t colon = field.find(':');
        if (colon != std::string::npos) {
            if (colon + 1 < field.size()) type_error("str.format() format specifications are not supported in chat templates");
            field.erase(colon);
        }
        if (bang != std::string::npos && bang < field.size()) {
            if (bang + 2 != field.size()) type_error("invalid conversion in str.format()");
            conversion = field[bang + 1];
            field.erase(bang);
        }
        if (field.find_first_of(".[") != std::string::npos)
            type_error("attribute or item access in str.format() fields is not supported in chat templates");
        const Value *v = nullptr;
        if (field.empty()) {
            if (auto_index >= args.positional.size()) type_error("Replacement index ", auto_index, " out of range for positional args tuple");
            v = &args.positional[auto_index++];
        } else if (std::all_of(field.begin(), field.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
            const size_t idx = std::stoul(field);
            if (idx >= args.positional.size()) type_error("Replacement index ", idx, " out of range for positional args tuple");
            v = &args.positional[idx];
        } else {
            for (const auto &kw : args.keyword)
                if (kw.first == field) v = &kw.second;
            if (!v) type_error("KeyError: '", field, "'");
        }
        if (v->is_undefined()) fail_undefined(*v);
        out += conversion == 'r' ? py_repr(*v) : py_str(*v);
        in.check_string_size(out.size());
    }
    return out;
}

Value str_method(Interpreter &in, const std::string &self, const std::string &name, CallArgs &args) {
    const std::string fname = "str." + name;
    if (name == "strip" || name == "lstrip" || name == "rstrip") {
        ArgBinder b(fname, args, {"chars"});
        const std::string *chars = opt_str(b, 0, "argument");
        return Value::string(py_strip(self, chars, name != "rstrip", name != "lstrip"));
    }
    if (name == "upper") return ArgBinder(fname, args, {}), Value::string(py_upper(self));
    if (name == "lower" || name == "casefold") return ArgBinder(fname, args, {}), Value::string(py_lower(self));
    if (name == "title") return ArgBinder(fname, args, {}), Value::string(py_title(self));
    if (name == "capitalize") return ArgBinder(fname, args, {}), Value::string(py_capitalize(self));
    if (name == "swapcase") return ArgBinder(fname, args, {}), Value::string(py_swapcase(self));
    if (name == "split" || name == "rsplit") {
        ArgBinder b(fname, args, {"sep", "maxsplit"});
        const std::string *sep = opt_str(b, 0, "argument 'sep'");
        const int64_t maxsplit = b.has(1) ? need_int(b, 1, "argument 'maxsplit'") : -1;
        std::vector<std::string> parts;
        if (name == "split" || maxsplit < 0) {
            parts = py_split(self, sep, maxsplit);
        } else {
            // rsplit with a limit: split the reversed text and reverse back.
            std::u32string r = to_u32(self);
            std::reverse(r.begin(), r.end());
            std::string rsep;
            if (sep) {
                std::u32string s32 = to_u32(*sep);
                std::reverse(s32.begin(), s32.end());
                rsep = to_utf8(s32);
            }
            parts = py_split(to_utf8(r), sep ? &rsep : nullptr, maxsplit);
            for (auto &p : parts) {
                std::u32string u = to_u32(p);
                std::reverse(u.begin(), u.end());
                p = to_utf8(u);
            }
            std::reverse(parts.begin(), parts.end());
        }
        std::vector<Value> items;
        for (auto &p : parts) items.push_back(Value::string(std::move(p)));
        return Value::list(std::move(items));
    }
    if (name == "splitlines") {
        ArgBinder b(fname, args, {"keepends"});
        const bool keep = b.has(0) && b.get(0).truthy();
        std::u32string u = to_u32(self);
        std::vector<Value> items;
        size_t start = 0;
        for (size_t k = 0; k < u.size(); ++k) {
            if (!is_line_break(u[k])) continue;
            size_t eol = k + 1;
            if (u[k] == '\r' && k + 1 < u.size() && u[k + 1] == '\n') eol = k + 2;
            items.push_back(Value::string(to_utf8(u.substr(start, (keep ? eol : k) - start))));
            start = eol;
            k = eol - 1;
        }
        if (start < u.size()) items.push_back(Value::string(to_utf8(u.substr(start))));
        return Value::list(std::move(items));
    }
    if (name == "startswith" || name == "endswith") {
        ArgBinder b(fname, args, {"prefix", "start", "end"});
        if (!b.has(0)) type_error(fname, "() takes at least 1 argument (0 given)");
        std::vector<std::u32string> cands;
        const Value &p = b.get(0);
        if (p.is_string()) {
            cands.push_back(to_u32(p.str()));
        } else if (p.is_tuple()) {
            for (const Value &v : p.items()) {
                if (!v.is_string()) type_error("tuple for ", name, " must only contain str, not ", type_name(v));
                cands.push_back(to_u32(v.str()));
            }
        } else {
            type_error(name, " first arg must be str or a tuple of str, not ", type_name(p));
        }
        const std::u32string u = to_u32(self);
        int64_t start, end;
        clamp_range(b, 1, 2, static_cast<int64_t>(u.size()), start, end);
        for (const auto &c : cands) {
            if (end - start < static_cast<int64_t>(c.size()) || start > end) continue;
            const size_t at = name == "startswith" ? static_cast<size_t>(start) : static_cast<size_t>(end) - c.size();
            if (u.compare(at, c.size(), c) == 0) return Value::boolean(true);
        }
        return Value::boolean(false);
    }
    if (name == "replace") {
        ArgBinder b(fname, args, {"old", "new", "count"});
        if (!b.has(1)) type_error(fname, "() takes at least 2 arguments");
        const int64_t count = b.has(2) ? need_int(b, 2, "argument 'count'") : -1;
        std::string r = py_replace(self, need_str(b, 0, "argument 1"), need_str(b, 1, "argument 2"), count);
        in.check_string_size(r.size());
        return Value::string(std::move(r));
    }
    if (name == "find" || name == "rfind" || name == "index" || name == "rindex" || name == "count") {
        ArgBinder b(fname, args, {"sub", "start", "end"});
        if (!b.has(0)) type_error(fname, "() takes at least 1 argument (0 given)");
        const std::u32string u = to_u32(self), sub = to_u32(need_str(b, 0, "argument 1"));
        int64_t start, end;
        clamp_range(b, 1, 2, static_cast<int64_t>(u.size()), start, end);
        if (name == "count") {
            if (start > end) return Value::integer(0);
            if (sub.empty()) return Value::integer(end - start + 1);
            int64_t n = 0;
            for (int64_t k = start; k + static_cast<int64_t>(sub.size()) <= end;) {
                if (u.compare(static_cast<size_t>(k), sub.size(), sub) == 0) {
                    ++n;
                    k += static_cast<int64_t>(sub.size());
                } else {
                    ++k;
                }
            }
            return Value::integer(n);
        }
        const bool rev = name[0] == 'r';
        const int64_t at = start > end ? -1 : find_sub(u, sub, start, end, rev);
        if (at < 0 && (name == "index" || name == "rindex")) type_error("substring not found");
        return Value::integer(at);
    }
    if (name == "join") {
        ArgBinder b(fname, args, {"iterable"});
        if (!b.has(0)) type_error(fname, "() takes exactly one argument (0 given)");
        std::string out;
        size_t k = 0;
        for (const Value &v : py_iterate(b.get(0))) {
            if (!v.is_string()) type_error("sequence item ", k, ": expected str instance, ", type_name(v), " found");
            if (k++) out += self;
            out += v.str();
            in.check_string_size(out.size());
        }
        return Value::string(std::move(out));
    }
    if (name == "removeprefix" || name == "removesuffix") {
        ArgBinder b(fname, args, {"fix"});
        if (!b.has(0)) type_error(fname, "() takes exactly one argument (0 given)");
        const std::string &fix = need_str(b, 0, "argument");
        if (name == "removeprefix" && self.compare(0, fix.size(), fix) == 0) return Value::string(self.substr(fix.size()));
        if (name == "removesuffix" && !fix.empty() && self.size() >= fix.size() &&
            self.compare(self.size() - fix.size(), fix.size(), fix) == 0)
            return Value::string(self.substr(0, self.size() - fix.size()));
        return Value::string(self);
    }
    if (name == "partition" || name == "rpartition") {
        ArgBinder b(fname, args, {"sep"});
        if (!b.has(0)) type_error(fname, "() takes exactly one argument (0 given)");
        const std::string &sep = need_str(b, 0, "argument");
        if (sep.empty()) type_error("empty separator");
        const size_t at = name == "partition" ? self.find(sep) : self.rfind(sep);
        if (at == std::string::npos) {
            if (name == "partition") return Value::list({Value::string(self), Value::string(""), Value::string("")}, true);
            return Value::list({Value::string(""), Value::string(""), Value::string(self)}, true);
        }
        return Value::list({Value::string(self.substr(0, at)), Value::string(sep), Value::string(self.substr(at + sep.size()))},
                           true);
    }
    if (name == "center" || name == "ljust" || name == "rjust" || name == "zfill") {
        ArgBinder b(fname, args, {"width", "fillchar"});
        if (!b.has(0)) type_error(fname, "() takes at least 1 argument (0 given)");
        const int64_t width = need_int(b, 0, "argument 1");
        std::u32string fill = U" ";
        if (name != "zfill" && b.has(1)) {
            fill = to_u32(need_str(b, 1, "argument 2"));
            if (fill.size() != 1) type_error("The fill character must be exactly one character long");
        }
        std::u32string u = to_u32(self);
        const int64_t len = static_cast<int64_t>(u.size());
        if (width <= len) return Value::string(self);
        if (width > static_cast<int64_t>(in.limits().max_output_bytes)) type_error(fname, "(): width too large");
        const size_t pad = static_cast<size_t>(width - len);
        std::u32string out;
        if (name == "ljust") {
            out = u + std::u32string(pad, fill[0]);
        } else if (name == "rjust") {
            out = std::u32string(pad, fill[0]) + u;
        } else if (name == "zfill") {
            size_t sign = (!u.empty() && (u[0] == '+' || u[0] == '-')) ? 1 : 0;
            out = u.substr(0, sign) + std::u32string(pad, U'0') + u.substr(sign);
        } else {
            const size_t left = pad / 2 + (pad & static_cast<size_t>(width) & 1);
            out = std::u32string(left, fill[0]) + u + std::u32string(pad - left, fill[0]);
        }
        return Value::string(to_utf8(out));
    }
    if (name == "format") return Value::string(py_format(in, self, args));
    if (name.size() > 2 && name.compare(0, 2, "is") == 0) {
        ArgBinder b(fname, args, {});
        const std::u32string u = to_u32(self);
        if (name == "isascii") return Value::boolean(std::all_of(u.begin(), u.end(), [](char32_t c) { return c < 0x80; }));
        if (u.empty()) return Value::boolean(false);
        if (name == "isspace") return Value::boolean(std::all_of(u.begin(), u.end(), py_isspace));
        if (name == "isalpha") return Value::boolean(std::all_of(u.begin(), u.end(), py_isalpha));
        if (name == "isdigit" || name == "isdecimal" || name == "isnumeric")
            return Value::boolean(std::all_of(u.begin(), u.end(), py_isdigit));
        if (name == "isalnum")
            return Value::boolean(std::all_of(u.begin(), u.end(), [](char32_t c) { return py_isalpha(c) || py_isdigit(c); }));
        if (name == "islower" || name == "isupper") {
            bool cased = false;
            for (char32_t c : u) {
                if (py_iscased_upper(c)) {
                    if (name == "islower") return Value::boolean(false);
                    cased = true;
                } else if (py_iscased_lower(c)) {
                    if (name == "isupper") return Value::boolean(false);
                    cased = true;
                }
            }
            return Value::boolean(cased);
        }
    }
    type_error("the str method '", name, "' is not supported in chat templates");
}

// markupsafe.Markup: these methods escape their string arguments and return Markup; the others
// are str's (returning plain str, or lists of str where Markup would give lists of Markup).
Value markup_method(Interpreter &in, const std::string &self, const std::string &name, CallArgs &args) {
    static const char *const wrapped[] = {"capitalize", "title",  "lower",      "upper",        "replace",
                                          "ljust",      "rjust",  "lstrip",     "rstrip",       "center",
                                          "strip",      "zfill",  "swapcase",   "casefold",     "removeprefix",
                                          "removesuffix", "format", "join"};
    bool is_wrapped = false;
    for (const char *w : wrapped)
        if (name == w) is_wrapped = true;
    if (!is_wrapped) {
        Value r = str_method(in, self, name, args);
        if (r.is_list() && (name == "split" || name == "rsplit" || name == "splitlines" || name == "partition" ||
                            name == "rpartition")) {
            std::vector<Value> pieces;
            for (const Value &v : r.items()) pieces.push_back(v.is_string() ? Value::markup(v.str()) : v);
            return Value::list(std::move(pieces), r.is_tuple());
        }
        return r;
    }
    auto esc = [](const Value &v) { return v.is_string() ? Value::string(markup_operand(v)) : v; };
    for (Value &v : args.positional) v = esc(v);
    for (auto &kw : args.keyword) kw.second = esc(kw.second);
    if (name == "join" && !args.positional.empty()) {
        std::vector<Value> items;
        for (const Value &v : py_iterate(args.positional[0])) items.push_back(v.is_string() ? Value::string(markup_operand(v)) : v);
        args.positional[0] = Value::list(std::move(items));
    }
    if (name == "format") {
        for (Value &v : args.positional) v = Value::string(markup_operand(v));
        for (auto &kw : args.keyword) kw.second = Value::string(markup_operand(kw.second));
    }
    const Value r = str_method(in, self, name, args);
    return r.is_string() ? Value::markup(r.str()) : r;
}

const char *const kStrMethods[] = {"capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find",
                                   "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit",
                                   "isidentifier", "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper",
                                   "join", "ljust", "lower", "lstrip", "maketrans", "partition", "removeprefix",
                                   "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip",
                                   "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper",
                                   "zfill"};
const char *const kDictMethods[] = {"clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault",
                                    "update", "values"};
const char *const kListMethods[] = {"append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove",
                                    "reverse", "sort"};

template <size_t N>
bool contains(const char *const (&names)[N], const std::string &name) {
    for (const char *n : names)
        if (name == n) return true;
    return false;
}

Value unsafe_method(const std::string &name, const char *type) {
    const std::string msg = "access to attribute '" + name + "' of '" + type +
                            "' object is unsafe (chat templates cannot modify their inputs)";
    return Value::function(name, [msg](Interpreter &, CallArgs &) -> Value { type_error(msg); });
}

Value dict_method(const Value &self, const std::string &name) {
    if (name == "get") {
        return Value::function("dict.get", [self](Interpreter &, CallArgs &args) {
            ArgBinder b("get", args, {"key", "default"});
            if (!b.has(0)) type_error("get expected at least 1 argument, got 0");
            const Value *v = self.dict_data().find(b.get(0));
            return v ? *v : b.get_or(1, Value::none());
        });
    }
    if (name == "items" || name == "keys" || name == "values") {
        return Value::function("dict." + name, [self, name](Interpreter &, CallArgs &args) {
            ArgBinder b(name, args, {});
            std::vector<Value> out;
            for (const auto &kv : self.dict_data().entries) {
                if (name == "items")
                    out.push_back(Value::list({kv.first, kv.second}, true));
                else
                    out.push_back(name == "keys" ? kv.first : kv.second);
            }
            return Value::list(std::move(out), false,
                               name == "items" ? ListView::Items : name == "keys" ? ListView::Keys : ListView::Values);
        });
    }
    if (name == "copy") {
        return Value::function("dict.copy", [self](Interpreter &, CallArgs &args) {
            ArgBinder b("copy", args, {});
            return Value::dict(self.dict_data());
        });
    }
    if (name == "fromkeys") {
        return Value::function("dict.fromkeys", [](Interpreter &, CallArgs &args) {
            ArgBinder b("fromkeys", args, {"iterable", "value"});
            if (!b.has(0)) type_error("fromkeys expected at least 1 argument, got 0");
            DictData d;
            for (const Value &k : py_iterate(b.get(0))) d.set(k, b.get_or(1, Value::none()));
            return Value::dict(std::move(d));
        });
    }
    return unsafe_method(name, "dict");
}

Value list_method(const Value &self, const std::string &name) {
    if (name == "count" || name == "index") {
        return Value::function("list." + name, [self, name](Interpreter &, CallArgs &args) {
            ArgBinder b(name, args, {"value"});
            if (!b.has(0)) type_error(name, "() takes exactly one argument (0 given)");
            int64_t n = 0, k = 0;
            for (const Value &v : self.items()) {
                if (py_equal(v, b.get(0))) {
                    if (name == "index") return Value::integer(k);
                    ++n;
                }
                ++k;
            }
            if (name == "index") type_error(py_repr(b.get(0)), " is not in list");
            return Value::integer(n);
        });
    }
    if (name == "copy") {
        return Value::function("list.copy", [self](Interpreter &, CallArgs &args) {
            ArgBinder b("copy", args, {});
            return Value::list(self.items(), self.is_tuple());
        });
    }
    return unsafe_method(name, self.is_tuple() ? "tuple" : "list");
}

std::string object_desc(const Value &v) {
    if (v.is_none()) return "None";
    return std::string(type_name(v)) + " object";
}

Value missing(const Value &obj, const std::string &attr_repr) {
    return Value::undefined("'" + object_desc(obj) + "' has no attribute " + attr_repr);
}

}  // namespace

std::vector<std::string> py_split(const std::string &s, const std::string *sep, int64_t maxsplit) {
    std::vector<std::string> out;
    if (!sep) {
        const std::u32string u = to_u32(s);
        size_t i = 0;
        const size_t n = u.size();
        for (;;) {
            while (i < n && py_isspace(u[i])) ++i;
            if (i >= n) break;
            if (maxsplit >= 0 && static_cast<int64_t>(out.size()) == maxsplit) {
                out.push_back(to_utf8(u.substr(i)));
                break;
            }
            size_t j = i;
            while (j < n && !py_isspace(u[j])) ++j;
            out.push_back(to_utf8(u.substr(i, j - i)));
            i = j;
        }
        return out;
    }
    if (sep->empty()) type_error("empty separator");
    size_t pos = 0;
    int64_t splits = 0;
    while (maxsplit < 0 || splits < maxsplit) {
        const size_t f = s.find(*sep, pos);
        if (f == std::string::npos) break;
        out.push_back(s.substr(pos, f - pos));
        pos = f + sep->size();
        ++splits;
    }
    out.push_back(s.substr(pos));
    return out;
}

std::string py_replace(const std::string &s, const std::string &old, const std::string &repl, int64_t count) {
    std::string out;
    if (old.empty()) {
        const std::u32string u = to_u32(s);
        int64_t done = 0;
        for (size_t k = 0; k <= u.size(); ++k) {
            if (count < 0 || done < count) {
                out += repl;
                ++done;
            }
            if (k < u.size()) append_utf8(out, u[k]);
        }
        return out;
    }
    size_t pos = 0;
    int64_t done = 0;
    while (count < 0 || done < count) {
        const size_t f = s.find(old, pos);
        if (f == std::string::npos) break;
        out.append(s, pos, f - pos);
        out += repl;
        pos = f + old.size();
        ++done;
    }
    out.append(s, pos, std::string::npos);
    return out;
}

Value get_attribute(Interpreter &in, const Value &obj, const std::string &name) {
    (void)in;
    if (obj.is_undefined()) fail_undefined(obj);
    if (!name.empty() && name[0] == '_')
        type_error("access to attribute '", name, "' of '", type_name(obj), "' object is unsafe");
    switch (obj.kind()) {
        case Kind::Dict: {
            if (contains(kDictMethods, name)) return dict_method(obj, name);
            const Value *v = obj.dict_data().find(name);
            return v ? *v : missing(obj, py_str_repr(name));
        }
        case Kind::String: {
            if (contains(kStrMethods, name)) {
                const std::string self = obj.str();
                if (obj.is_markup()) {
                    return Value::function("Markup." + name, [self, name](Interpreter &interp, CallArgs &args) {
                        return markup_method(interp, self, name, args);
                    });
                }
                return Value::function("str." + name, [self, name](Interpreter &interp, CallArgs &args) {
                    return str_method(interp, self, name, args);
                });
            }
            return missing(obj, py_str_repr(name));
        }
        case Kind::List:
            if (obj.list_data().view == ListView::Plain && contains(kListMethods, name)) return list_method(obj, name);
            if (obj.list_data().view == ListView::Range && (name == "count" || name == "index")) return list_method(obj, name);
            return missing(obj, py_str_repr(name));
        case Kind::Object: {
            const Value *v = obj.object_data().attrs.find(name);
            return v ? *v : missing(obj, py_str_repr(name));
        }
        default: return missing(obj, py_str_repr(name));
    }
}

Value get_item(Interpreter &in, const Value &obj, const Value &key) {
    if (obj.is_undefined()) fail_undefined(obj);
    switch (obj.kind()) {
        case Kind::Dict: {
            if (key.is_list() && !key.is_tuple()) type_error("unhashable type: 'list'");
            if (key.is_dict()) type_error("unhashable type: 'dict'");
            const Value *v = obj.dict_data().find(key);
            if (v) return *v;
            break;
        }
        case Kind::List:
        case Kind::String: {
            if (obj.is_list() && obj.list_data().view != ListView::Plain && obj.list_data().view != ListView::Range)
                break;  // dict views are not subscriptable
            if (key.is_int() || key.is_bool()) {
                const int64_t len = py_len(obj);
                int64_t k = key.as_int();
                if (k < 0) k += len;
                if (k >= 0 && k < len) {
                    if (obj.is_list()) return obj.items()[static_cast<size_t>(k)];
                    std::u32string u = to_u32(obj.str());
                    std::string ch;
                    append_utf8(ch, u[static_cast<size_t>(k)]);
                    return obj.is_markup() ? Value::markup(std::move(ch)) : Value::string(std::move(ch));
                }
            }
            break;
        }
        default: break;
    }
    if (key.is_string()) return get_attribute(in, obj, key.str());
    return missing(obj, py_repr(key));
}

Value get_slice(const Value &obj, const Value &start_v, const Value &stop_v, const Value &step_v) {
    if (obj.is_undefined()) fail_undefined(obj);
    auto idx = [](const Value &v, const char *what) -> std::optional<int64_t> {
        if (v.is_none() || v.is_undefined()) return std::nullopt;
        if (!v.is_int() && !v.is_bool()) type_error("slice ", what, " must be an integer or None, not ", type_name(v));
        return v.as_int();
    };
    const auto start_o = idx(start_v, "start"), stop_o = idx(stop_v, "stop"), step_o = idx(step_v, "step");
    const int64_t step = step_o.value_or(1);
    if (step == 0) type_error("slice step cannot be zero");
    // Jinja compiles slices to a direct Python subscript, so errors are not turned into Undefined.
    if (obj.is_dict()) type_error("unhashable type: 'slice'");
    if (!(obj.is_plain_list() || obj.is_string() || (obj.is_list() && obj.list_data().view == ListView::Range)))
        type_error("'", type_name(obj), "' object is not subscriptable");
    std::u32string u;
    if (obj.is_string()) u = to_u32(obj.str());
    const int64_t len = obj.is_string() ? static_cast<int64_t>(u.size()) : static_cast<int64_t>(obj.items().size());
    // CPython PySlice_AdjustIndices
    auto adjust = [&](std::optional<int64_t> v, int64_t def_pos, int64_t def_neg) {
        if (!v) return step > 0 ? def_pos : def_neg;
        int64_t x = *v;
        if (x < 0) {
            x += len;
            if (x < 0) x = step < 0 ? -1 : 0;
        } else if (x >= len) {
            x = step < 0 ? len - 1 : len;
        }
        return x;
    };
    const int64_t start = adjust(start_o, 0, len - 1);
    const int64_t stop = adjust(stop_o, len, -1);
    std::vector<size_t> picks;
    if (step > 0)
        for (int64_t k = start; k < stop; k += step) picks.push_back(static_cast<size_t>(k));
    else
        for (int64_t k = start; k > stop; k += step) picks.push_back(static_cast<size_t>(k));
    if (obj.is_string()) {
        std::string out;
        for (size_t k : picks) append_utf8(out, u[k]);
        return obj.is_markup() ? Value::markup(std::move(out)) : Value::string(std::move(out));
    }
    std::vector<Value> out;
    out.reserve(picks.size());
    for (size_t k : picks) out.push_back(obj.items()[k]);
    if (obj.list_data().view == ListView::Range) {  // CPython compute_slice
        const ListData &r = obj.list_data();
        return Value::range(r.range_start + start * r.range_step, r.range_start + stop * r.range_step, r.range_step * step,
                            std::move(out));
    }
    return Value::list(std::move(out), obj.is_tuple());
}

}  // namespace eurollm::chat::jinja
