#include "chat/jinja_value.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "chat/jinja_error.h"
#include "chat/jinja_unicode.h"

namespace eurollm::chat::jinja {

// ---------------------------------------------------------------------------------------------
// construction and access

Value Value::undefined(std::string hint) {
    Value v;
    v.s_ = std::move(hint);
    return v;
}

Value Value::none() {
    Value v;
    v.kind_ = Kind::None;
    return v;
}

Value Value::boolean(bool b) {
    Value v;
    v.kind_ = Kind::Bool;
    v.b_ = b;
    return v;
}

Value Value::integer(int64_t i) {
    Value v;
    v.kind_ = Kind::Int;
    v.i_ = i;
    return v;
}

Value Value::number(double d) {
    Value v;
    v.kind_ = Kind::Float;
    v.f_ = d;
    return v;
}

Value Value::string(std::string s) {
    Value v;
    v.kind_ = Kind::String;
    v.s_ = std::move(s);
    return v;
}

Value Value::markup(std::string s) {
    Value v = string(std::move(s));
    v.markup_ = true;
    return v;
}

std::string html_escape(const std::string &s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&#34;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string markup_operand(const Value &v) { return v.is_markup() ? v.str() : html_escape(py_str(v)); }

Value Value::list(std::vector<Value> items, bool tuple, ListView view) {
    Value v;
    v.kind_ = Kind::List;
    auto d = std::make_shared<ListData>();
    d->items = std::move(items);
    d->tuple = tuple;
    d->view = view;
    v.list_ = std::move(d);
    return v;
}

Value Value::dict(DictData d) {
    Value v;
    v.kind_ = Kind::Dict;
    v.dict_ = std::make_shared<DictData>(std::move(d));
    return v;
}

Value Value::object(std::shared_ptr<ObjectData> o) {
    Value v;
    v.kind_ = Kind::Object;
    v.obj_ = std::move(o);
    return v;
}

Value Value::function(std::string name, NativeFn fn) {
    Value v;
    v.kind_ = Kind::Function;
    auto f = std::make_shared<FuncData>();
    f->name = std::move(name);
    f->fn = std::move(fn);
    v.fn_ = std::move(f);
    return v;
}

Value Value::range(int64_t start, int64_t stop, int64_t step, std::vector<Value> items) {
    Value v = list(std::move(items), false, ListView::Range);
    auto d = std::const_pointer_cast<ListData>(v.list_);
    d->range_start = start;
    d->range_stop = stop;
    d->range_step = step;
    return v;
}

double Value::as_double() const {
    switch (kind_) {
        case Kind::Bool: return b_ ? 1.0 : 0.0;
        case Kind::Int: return static_cast<double>(i_);
        default: return f_;
    }
}

const std::vector<Value> &Value::items() const { return list_->items; }

bool Value::is_tuple() const { return kind_ == Kind::List && list_->tuple; }

bool Value::is_plain_list() const { return kind_ == Kind::List && list_->view == ListView::Plain; }

const void *Value::identity() const {
    switch (kind_) {
        case Kind::List: return list_.get();
        case Kind::Dict: return dict_.get();
        case Kind::Object: return obj_.get();
        case Kind::Function: return fn_.get();
        default: return nullptr;
    }
}

bool Value::truthy() const {
    switch (kind_) {
        case Kind::Undefined:
        case Kind::None: return false;
        case Kind::Bool: return b_;
        case Kind::Int: return i_ != 0;
        case Kind::Float: return f_ != 0.0;
        case Kind::String: return !s_.empty();
        case Kind::List: return !list_->items.empty();
        case Kind::Dict: return dict_->size() != 0;
        default: return true;
    }
}

// ---------------------------------------------------------------------------------------------
// dicts

std::string hash_key(const Value &v) {
    switch (v.kind()) {
        case Kind::Bool:
        case Kind::Int: return "n" + std::to_string(v.as_int());
        case Kind::Float: {
            const double d = v.as_double();
            if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18)
                return "n" + std::to_string(static_cast<int64_t>(d));
            return "f" + py_float_repr(d);
        }
        case Kind::String: return "s" + v.str();
        case Kind::None: return "N";
        case Kind::Undefined: return "U";
        case Kind::List: {
            if (!v.is_tuple()) type_error("unhashable type: 'list'");
            std::string k = "t";
            for (const Value &item : v.items()) {
                std::string part = hash_key(item);
                k += std::to_string(part.size()) + ":" + part;
            }
            return k;
        }
        case Kind::Dict: type_error("unhashable type: 'dict'");
        default: {
            char buf[32];
            std::snprintf(buf, sizeof buf, "o%p", v.identity());
            return buf;
        }
    }
}

const Value *DictData::find(const Value &key) const {
    auto it = index.find(hash_key(key));
    return it == index.end() ? nullptr : &entries[it->second].second;
}

const Value *DictData::find(const std::string &key) const {
    auto it = index.find("s" + key);
    return it == index.end() ? nullptr : &entries[it->second].second;
}

void DictData::set(const Value &key, Value value) {
    std::string k = hash_key(key);
    auto it = index.find(k);
    if (it != index.end()) {
        entries[it->second].second = std::move(value);
        return;
    }
    index.emplace(std::move(k), entries.size());
    entries.emplace_back(key, std::move(value));
}

// ---------------------------------------------------------------------------------------------
// str() and repr()

const char *type_name(const Value &v) {
    switch (v.kind()) {
        case Kind::Undefined: return "Undefined";
        case Kind::None: return "NoneType";
        case Kind::Bool: return "bool";
        case Kind::Int: return "int";
        case Kind::Float: return "float";
        case Kind::String: return v.is_markup() ? "Markup" : "str";
        case Kind::List:
            switch (v.list_data().view) {
                case ListView::Keys: return "dict_keys";
                case ListView::Values: return "dict_values";
                case ListView::Items: return "dict_items";
                case ListView::Range: return "range";
                default: return v.is_tuple() ? "tuple" : "list";
            }
        case Kind::Dict: return "dict";
        case Kind::Object: return v.object_data().type_name.c_str();
        case Kind::Function: return "function";
    }
    return "object";
}

std::string py_float_repr(double d) {
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    if (d == 0.0) return std::signbit(d) ? "-0.0" : "0.0";
    char buf[48];
    for (int prec = 1; prec <= 17; ++prec) {
        std::snprintf(buf, sizeof buf, "%.*e", prec - 1, d);
        if (std::strtod(buf, nullptr) == d) break;
    }
    std::string s(buf);
    const bool neg = s[0] == '-';
    if (neg) s.erase(0, 1);
    const size_t epos = s.find('e');
    const int exp10 = std::atoi(s.c_str() + epos + 1);
    std::string digits;
    for (size_t k = 0; k < epos; ++k)
        if (s[k] != '.') digits += s[k];
    while (digits.size() > 1 && digits.back() == '0') digits.pop_back();
    const int decpt = exp10 + 1;  // value = 0.<digits> * 10^decpt
    std::string out;
    if (decpt <= -4 || decpt > 16) {
        out = digits.substr(0, 1);
        if (digits.size() > 1) out += "." + digits.substr(1);
        const int e = decpt - 1;
        out += e < 0 ? "e-" : "e+";
        const int ae = e < 0 ? -e : e;
        if (ae < 10) out += '0';
        out += std::to_string(ae);
    } else if (decpt <= 0) {
        out = "0." + std::string(static_cast<size_t>(-decpt), '0') + digits;
    } else if (decpt >= static_cast<int>(digits.size())) {
        out = digits + std::string(static_cast<size_t>(decpt) - digits.size(), '0') + ".0";
    } else {
        out = digits.substr(0, static_cast<size_t>(decpt)) + "." + digits.substr(static_cast<size_t>(decpt));
    }
    return neg ? "-" + out : out;
}

std::string py_str_repr(const std::string &s) {
    const bool has_single = s.find('\'') != std::string::npos;
    const bool has_double = s.find('"') != std::string::npos;
    const char quote = (has_single && !has_double) ? '"' : '\'';
    std::string out(1, quote);
    for (char32_t c : to_u32(s)) {
        char buf[16];
        if (c == static_cast<char32_t>(quote) || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (py_isprintable(c)) {
            append_utf8(out, c);
        } else if (c < 0x100) {
            std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned>(c));
            out += buf;
        } else if (c < 0x10000) {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
            out += buf;
        } else {
            std::snprintf(buf, sizeof buf, "\\U%08x", static_cast<unsigned>(c));
            out += buf;
        }
    }
    out += quote;
    return out;
}

std::string py_repr(const Value &v) {
    switch (v.kind()) {
        case Kind::String:
            return v.is_markup() ? "Markup(" + py_str_repr(v.str()) + ")" : py_str_repr(v.str());
        case Kind::Undefined: return "Undefined";
        case Kind::List: {
            const ListData &d = v.list_data();
            std::string inner;
            for (size_t k = 0; k < d.items.size(); ++k) {
                if (k) inner += ", ";
                inner += py_repr(d.items[k]);
            }
            switch (d.view) {
                case ListView::Keys: return "dict_keys([" + inner + "])";
                case ListView::Values: return "dict_values([" + inner + "])";
                case ListView::Items: return "dict_items([" + inner + "])";
                case ListView::Range: {
                    std::string r = "range(" + std::to_string(d.range_start) + ", " + std::to_string(d.range_stop);
                    if (d.range_step != 1) r += ", " + std::to_string(d.range_step);
                    return r + ")";
                }
                default: break;
            }
            if (d.tuple) return "(" + inner + (d.items.size() == 1 ? ",)" : ")");
            return "[" + inner + "]";
        }
        case Kind::Dict: {
            std::string out = "{";
            bool first = true;
            for (const auto &kv : v.dict_data().entries) {
                if (!first) out += ", ";
                first = false;
                out += py_repr(kv.first) + ": " + py_repr(kv.second);
            }
            return out + "}";
        }
        case Kind::Object: {
            const ObjectData &o = v.object_data();
            if (o.type_name == "Namespace") {
                std::string out = "<Namespace {";
                bool first = true;
                for (const auto &kv : o.attrs.entries) {
                    if (!first) out += ", ";
                    first = false;
                    out += py_repr(kv.first) + ": " + py_repr(kv.second);
                }
                return out + "}>";
            }
            if (o.type_name == "LoopContext") {
                const Value *index = o.attrs.find(std::string("index"));
                const Value *length = o.attrs.find(std::string("length"));
                return "<LoopContext " + (index ? py_str(*index) : "?") + "/" + (length ? py_str(*length) : "?") + ">";
            }
            return "<" + o.type_name + " object>";
        }
        case Kind::Function: return "<function " + v.func().name + ">";
        default: return py_str(v);
    }
}

std::string py_str(const Value &v) {
    switch (v.kind()) {
        case Kind::Undefined: return std::string();
        case Kind::None: return "None";
        case Kind::Bool: return v.as_bool() ? "True" : "False";
        case Kind::Int: return std::to_string(v.as_int());
        case Kind::Float: return py_float_repr(v.as_double());
        case Kind::String: return v.str();
        default: return py_repr(v);
    }
}

// ---------------------------------------------------------------------------------------------
// comparison

bool py_equal(const Value &a, const Value &b) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) return a.as_double() == b.as_double();
        return a.as_int() == b.as_int();
    }
    if (a.kind() != b.kind()) return false;
    switch (a.kind()) {
        case Kind::Undefined:
        case Kind::None: return true;
        case Kind::String: return a.str() == b.str();
        case Kind::List: {
            if (a.is_tuple() != b.is_tuple()) return false;
            if ((a.list_data().view == ListView::Range) != (b.list_data().view == ListView::Range)) return false;
            const auto &x = a.items();
            const auto &y = b.items();
            if (x.size() != y.size()) return false;
            for (size_t k = 0; k < x.size(); ++k)
                if (!py_equal(x[k], y[k])) return false;
            return true;
        }
        case Kind::Dict: {
            const DictData &x = a.dict_data();
            const DictData &y = b.dict_data();
            if (x.size() != y.size()) return false;
            for (const auto &kv : x.entries) {
                const Value *other = y.find(kv.first);
                if (!other || !py_equal(kv.second, *other)) return false;
            }
            return true;
        }
        default: return a.identity() == b.identity();
    }
}

int py_compare(const Value &a, const Value &b, const char *op) {
    if (a.is_number() && b.is_number()) {
        if (a.is_float() || b.is_float()) {
            const double x = a.as_double(), y = b.as_double();
            return x < y ? -1 : (x > y ? 1 : 0);
        }
        const int64_t x = a.as_int(), y = b.as_int();
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (a.is_string() && b.is_string()) {
        const int c = a.str().compare(b.str());  // UTF-8 byte order == code point order
        return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    if (a.is_plain_list() && b.is_plain_list() && a.is_tuple() == b.is_tuple()) {
        const auto &x = a.items();
        const auto &y = b.items();
        for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
            if (py_equal(x[k], y[k])) continue;
            return py_compare(x[k], y[k], op);
        }
        return x.size() < y.size() ? -1 : (x.size() > y.size() ? 1 : 0);
    }
    type_error("'", op, "' not supported between instances of '", type_name(a), "' and '", type_name(b), "'");
}

// ---------------------------------------------------------------------------------------------
// json.dumps

namespace {

void json_string(const std::string &s, bool ensure_ascii, std::string &out) {
    out += '"';
    char buf[16];
    for (char32_t c : to_u32(s)) {
        switch (c) {
            case '"': out += "\\\""; continue;
            case '\\': out += "\\\\"; continue;
            case '\n': out += "\\n"; continue;
            case '\r': out += "\\r"; continue;
            case '\t': out += "\\t"; continue;
            case '\b': out += "\\b"; continue;
            case '\f': out += "\\f"; continue;
            default: break;
        }
        if (c < 0x20 || (ensure_ascii && c > 0x7E)) {
            if (c < 0x10000) {
                std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                out += buf;
            } else {
                const char32_t v = c - 0x10000;
                std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xD800 | (v >> 10)),
                              static_cast<unsigned>(0xDC00 | (v & 0x3FF)));
                out += buf;
            }
        } else {
            append_utf8(out, c);
        }
    }
    out += '"';
}

std::string json_float(double d) {
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    return py_float_repr(d);
}

void json_dump(const Value &v, const json_options &o, int level, std::string &out, int depth) {
    if (depth > 512) type_error("tojson: value nested too deeply");
    auto newline = [&](int lvl) {
        if (!o.indent) return;
        out += '\n';
        for (int k = 0; k < lvl; ++k) out += *o.indent;
    };
    switch (v.kind()) {
        case Kind::None: out += "null"; return;
        case Kind::Bool: out += v.as_bool() ? "true" : "false"; return;
        case Kind::Int: out += std::to_string(v.as_int()); return;
        case Kind::Float: out += json_float(v.as_double()); return;
        case Kind::String: json_string(v.str(), o.ensure_ascii, out); return;
        case Kind::List: {
            if (!v.is_plain_list()) type_error("Object of type ", type_name(v), " is not JSON serializable");
            const auto &items = v.items();
            if (items.empty()) {
                out += "[]";
                return;
            }
            out += '[';
            newline(level + 1);
            for (size_t k = 0; k < items.size(); ++k) {
                if (k) {
                    out += o.item_separator;
                    newline(level + 1);
                }
                json_dump(items[k], o, level + 1, out, depth + 1);
            }
            newline(level);
            out += ']';
            return;
        }
        case Kind::Dict: {
            const DictData &d = v.dict_data();
            if (d.size() == 0) {
                out += "{}";
                return;
            }
            std::vector<const std::pair<Value, Value> *> entries;
            for (const auto &kv : d.entries) entries.push_back(&kv);
            if (o.sort_keys) {
                std::stable_sort(entries.begin(), entries.end(), [](const auto *x, const auto *y) {
                    return py_compare(x->first, y->first) < 0;
                });
            }
            out += '{';
            newline(level + 1);
            bool first = true;
            for (const auto *kv : entries) {
                if (!first) {
                    out += o.item_separator;
                    newline(level + 1);
                }
                first = false;
                const Value &key = kv->first;
                std::string ks;
                switch (key.kind()) {
                    case Kind::String: ks = key.str(); break;
                    case Kind::Float: ks = json_float(key.as_double()); break;
                    case Kind::Bool: ks = key.as_bool() ? "true" : "false"; break;
                    case Kind::None: ks = "null"; break;
                    case Kind::Int: ks = std::to_string(key.as_int()); break;
                    default: type_error("keys must be str, int, float, bool or None, not ", type_name(key));
                }
                json_string(ks, o.ensure_ascii, out);
                out += o.key_separator;
                json_dump(kv->second, o, level + 1, out, depth + 1);
            }
            newline(level);
            out += '}';
            return;
        }
        default: type_error("Object of type ", type_name(v), " is not JSON serializable");
    }
}

template <typename Json>
Value convert_json(const Json &j, int depth) {
    if (depth > 512) type_error("input JSON nested too deeply");
    switch (j.type()) {
        case nlohmann::json::value_t::null: return Value::none();
        case nlohmann::json::value_t::boolean: return Value::boolean(j.template get<bool>());
        case nlohmann::json::value_t::number_integer: return Value::integer(j.template get<int64_t>());
        case nlohmann::json::value_t::number_unsigned: {
            const uint64_t u = j.template get<uint64_t>();
            if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                type_error("integer ", u, " in the input is too large (the limit is 2^63-1)");
            return Value::integer(static_cast<int64_t>(u));
        }
        case nlohmann::json::value_t::number_float: return Value::number(j.template get<double>());
        case nlohmann::json::value_t::string: return Value::string(j.template get<std::string>());
        case nlohmann::json::value_t::array: {
            std::vector<Value> items;
            items.reserve(j.size());
            for (const auto &e : j) items.push_back(convert_json(e, depth + 1));
            return Value::list(std::move(items));
        }
        case nlohmann::json::value_t::object: {
            DictData d;
            for (auto it = j.begin(); it != j.end(); ++it) d.set(Value::string(it.key()), convert_json(it.value(), depth + 1));
            return Value::dict(std::move(d));
        }
        default: type_error("unsupported JSON value (binary data) in the input");
    }
}

}  // namespace

std::string py_json_dumps(const Value &v, const json_options &opts) {
    std::string out;
    json_dump(v, opts, 0, out, 0);
    return out;
}

Value from_json(const nlohmann::ordered_json &j) { return convert_json(j, 0); }
Value from_json(const nlohmann::json &j) { return convert_json(j, 0); }

}  // namespace eurollm::chat::jinja
