#include "chat/jinja_eval.h"

#include <sys/time.h>

#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>

#include "chat/jinja_error.h"
#include "chat/jinja_filters.h"
#include "chat/jinja_methods.h"
#include "chat/jinja_unicode.h"

namespace eurollm::chat::jinja {

namespace {

// Raised by the template through raise_exception(msg).
struct template_exception {
    std::string message;
};

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

bool add_overflow(int64_t a, int64_t b, int64_t &r) { return __builtin_add_overflow(a, b, &r); }
bool sub_overflow(int64_t a, int64_t b, int64_t &r) { return __builtin_sub_overflow(a, b, &r); }
bool mul_overflow(int64_t a, int64_t b, int64_t &r) { return __builtin_mul_overflow(a, b, &r); }

[[noreturn]] void int_overflow() { type_error("integer result too large (the limit is 64-bit)"); }

// Python's `str % x` accepts unused arguments when x is a single non-tuple, non-str object with
// __getitem__ (a list, dict, range, Undefined); dict views have none.
bool mapping_like(const Value &b) {
    if (b.is_tuple()) return false;
    if (b.is_list()) return b.list_data().view == ListView::Plain || b.list_data().view == ListView::Range;
    return b.is_dict() || b.is_undefined();
}

// CPython float_floor_div / float_rem
void py_float_divmod(double vx, double wx, double &floordiv, double &mod) {
    if (wx == 0.0) type_error("float division by zero");
    mod = std::fmod(vx, wx);
    double div = (vx - mod) / wx;
    if (mod != 0.0) {
        if ((wx < 0) != (mod < 0)) {
            mod += wx;
            div -= 1.0;
        }
    } else {
        mod = std::copysign(0.0, wx);
    }
    if (div != 0.0) {
        floordiv = std::floor(div);
        if (div - floordiv > 0.5) floordiv += 1.0;
    } else {
        floordiv = std::copysign(0.0, vx / wx);
    }
}

Value repeat(Interpreter &in, const Value &seq, int64_t times) {
    if (times <= 0) return seq.is_markup() ? Value::markup("") : seq.is_string() ? Value::string("") : Value::list({}, seq.is_tuple());
    if (seq.is_string()) {
        const size_t total = seq.str().size() * static_cast<size_t>(times);
        if (times > 0 && total / static_cast<size_t>(times) != seq.str().size()) in.check_string_size(SIZE_MAX);
        in.check_string_size(total);
        std::string out;
        out.reserve(total);
        for (int64_t k = 0; k < times; ++k) out += seq.str();
        return seq.is_markup() ? Value::markup(std::move(out)) : Value::string(std::move(out));
    }
    const size_t n = seq.items().size();
    if (n && static_cast<uint64_t>(times) > in.limits().max_output_bytes / n) in.check_string_size(SIZE_MAX);
    std::vector<Value> out;
    out.reserve(n * static_cast<size_t>(times));
    for (int64_t k = 0; k < times; ++k) out.insert(out.end(), seq.items().begin(), seq.items().end());
    return Value::list(std::move(out), seq.is_tuple());
}

std::string strftime_now(const std::string &fmt) {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    std::time_t t = tv.tv_sec;
    std::tm tm{};
    localtime_r(&t, &tm);
    // Python's naive datetime: %f is microseconds, %z and %Z are empty.
    std::string f;
    for (size_t k = 0; k < fmt.size(); ++k) {
        if (fmt[k] == '%' && k + 1 < fmt.size()) {
            const char c = fmt[k + 1];
            if (c == 'f') {
                char buf[8];
                std::snprintf(buf, sizeof buf, "%06ld", static_cast<long>(tv.tv_usec));
                f += buf;
                ++k;
                continue;
            }
            if (c == 'z' || c == 'Z') {
                ++k;
                continue;
            }
            f += fmt[k];
            f += c;
            ++k;
            continue;
        }
        f += fmt[k];
    }
    if (f.empty()) return std::string();
    std::vector<char> buf(f.size() * 8 + 256);
    const size_t n = std::strftime(buf.data(), buf.size(), f.c_str(), &tm);
    return std::string(buf.data(), n);
}

Value make_namespace(DictData attrs) {
    for (const auto &kv : attrs.entries) {
        if (kv.first.is_string() && !kv.first.str().empty() && kv.first.str()[0] == '_')
            type_error("Chat templates cannot store underscore-prefixed attributes on a namespace, but got ",
                       py_repr(kv.first), ". Please rename the attribute.");
    }
    auto o = std::make_shared<ObjectData>();
    o->type_name = "Namespace";
    o->assignable = true;
    o->attrs = std::move(attrs);
    return Value::object(std::move(o));
}

// dict(...) / namespace(...) argument handling: dict(mapping_or_pairs, **kwargs).
DictData dict_from_args(CallArgs &args, const char *fname) {
    DictData d;
    if (args.positional.size() > 1) type_error(fname, " expected at most 1 positional argument, got ", args.positional.size());
    if (!args.positional.empty()) {
        const Value &src = args.positional[0];
        if (src.is_undefined()) fail_undefined(src);  // dict() probes .keys, which Undefined refuses
        if (src.is_dict()) {
            d = src.dict_data();
        } else {
            size_t k = 0;
            for (const Value &pair : py_iterate(src)) {
                std::vector<Value> kv = py_iterate(pair);
                if (kv.size() != 2)
                    type_error("dictionary update sequence element #", k, " has length ", kv.size(), "; 2 is required");
                d.set(kv[0], kv[1]);
                ++k;
            }
        }
    }
    for (const auto &kw : args.keyword) d.set(Value::string(kw.first), kw.second);
    return d;
}

void install_builtins(Scope &g) {
    g.set("raise_exception", Value::function("raise_exception", [](Interpreter &, CallArgs &args) -> Value {
              ArgBinder b("raise_exception", args, {"message"});
              throw template_exception{b.has(0) ? py_str(b.get(0)) : std::string()};
          }));
    g.set("strftime_now", Value::function("strftime_now", [](Interpreter &, CallArgs &args) {
              ArgBinder b("strftime_now", args, {"format"});
              if (!b.has(0)) type_error("strftime_now() missing required argument 'format'");
              return Value::string(strftime_now(need_str(b, 0, "argument 'format'")));
          }));
    g.set("namespace", Value::function("namespace", [](Interpreter &, CallArgs &args) {
              return make_namespace(dict_from_args(args, "namespace"));
          }));
    g.set("dict", Value::function("dict", [](Interpreter &, CallArgs &args) {
              return Value::dict(dict_from_args(args, "dict"));
          }));
    g.set("range", Value::function("range", [](Interpreter &in, CallArgs &args) {
              ArgBinder b("range", args, {"start", "stop", "step"});
              if (!b.has(0)) type_error("range expected at least 1 argument, got 0");
              int64_t start = 0, stop, step = 1;
              if (b.has(1)) {
                  start = need_int(b, 0, "argument 1");
                  stop = need_int(b, 1, "argument 2");
                  if (b.has(2)) step = need_int(b, 2, "argument 3");
              } else {
                  stop = need_int(b, 0, "argument 1");
              }
              if (step == 0) type_error("range() arg 3 must not be zero");
              int64_t count = 0;
              if (step > 0 && start < stop) count = (stop - start - 1) / step + 1;
              if (step < 0 && start > stop) count = (start - stop - 1) / (-step) + 1;
              if (count > kMaxRange)
                  type_error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (", kMaxRange, ").");
              in.count_iterations(static_cast<uint64_t>(count));
              std::vector<Value> items;
              items.reserve(static_cast<size_t>(count));
              for (int64_t k = 0; k < count; ++k) items.push_back(Value::integer(start + k * step));
              return Value::range(start, stop, step, std::move(items));
          }));
    g.set("joiner", Value::function("joiner", [](Interpreter &, CallArgs &args) {
              ArgBinder b("joiner", args, {"sep"});
              const std::string sep = b.has(0) ? py_str(b.get(0)) : std::string(", ");
              auto used = std::make_shared<bool>(false);
              return Value::function("joiner", [sep, used](Interpreter &, CallArgs &) {
                  if (!*used) {
                      *used = true;
                      return Value::string("");
                  }
                  return Value::string(sep);
              });
          }));
    for (const char *name : {"cycler", "lipsum"}) {
        const std::string n = name;
        g.set(n, Value::function(n, [n](Interpreter &, CallArgs &) -> Value {
                  type_error(n, "() is not supported in chat templates");
              }));
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Python semantics helpers

// str() for output: Python would print a function as "<built-in method ... at 0x7f...>", an
// address that cannot be reproduced, so printing one is an error.
std::string output_str(const Value &v) {
    if (v.is_function())
        type_error("cannot output the function '", v.func().name, "' (call it with parentheses)");
    return py_str(v);
}

void fail_undefined(const Value &v) {
    throw eval_error{v.str().empty() ? std::string("undefined value") : v.str()};
}

std::vector<Value> py_iterate(const Value &v) {
    switch (v.kind()) {
        case Kind::Undefined: return {};
        case Kind::List: return v.items();
        case Kind::Dict: {
            std::vector<Value> keys;
            for (const auto &kv : v.dict_data().entries) keys.push_back(kv.first);
            return keys;
        }
        case Kind::String: {
            std::vector<Value> chars;
            for (char32_t c : to_u32(v.str())) {
                std::string s;
                append_utf8(s, c);
                chars.push_back(Value::string(std::move(s)));
            }
            return chars;
        }
        default: type_error("'", type_name(v), "' object is not iterable");
    }
}

int64_t py_len(const Value &v) {
    switch (v.kind()) {
        case Kind::Undefined: return 0;
        case Kind::String: return static_cast<int64_t>(utf8_length(v.str()));
        case Kind::List: return static_cast<int64_t>(v.items().size());
        case Kind::Dict: return static_cast<int64_t>(v.dict_data().size());
        default: type_error("object of type '", type_name(v), "' has no len()");
    }
}

bool py_contains(const Value &container, const Value &item) {
    switch (container.kind()) {
        case Kind::Undefined: return false;
        case Kind::String:
            if (item.is_undefined()) fail_undefined(item);
            if (!item.is_string()) type_error("'in <string>' requires string as left operand, not ", type_name(item));
            return container.str().find(item.str()) != std::string::npos;
        case Kind::List:
            for (const Value &v : container.items())
                if (py_equal(v, item)) return true;
            return false;
        case Kind::Dict: return container.dict_data().find(item) != nullptr;
        default: type_error("argument of type '", type_name(container), "' is not iterable");
    }
}

Value py_binary(Interpreter &in, const std::string &op, const Value &a, const Value &b) {
    if (op == "%" && a.is_markup()) {
        // Markup.__mod__: string arguments are escaped, the result is Markup
        std::vector<Value> args;
        auto esc = [](const Value &v) { return v.is_string() || v.is_none() ? Value::markup(markup_operand(v)) : v; };
        if (b.is_tuple())
            for (const Value &v : b.items()) args.push_back(esc(v));
        else
            args.push_back(esc(b));
        return Value::markup(py_percent_format(a.str(), args, mapping_like(b)));
    }
    if (op == "%" && a.is_string() && b.is_undefined()) {
        // str.__mod__ treats Undefined (which has __getitem__) as a mapping: no error unless used
        std::string r = py_percent_format(a.str(), {b}, true);
        return Value::string(std::move(r));
    }
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    const bool ints = (a.is_int() || a.is_bool()) && (b.is_int() || b.is_bool());
    const bool nums = a.is_number() && b.is_number();
    auto unsupported = [&]() -> Value {
        type_error("unsupported operand type(s) for ", op, ": '", type_name(a), "' and '", type_name(b), "'");
    };
    if (op == "+") {
        int64_t r;
        if (ints) {
            if (add_overflow(a.as_int(), b.as_int(), r)) int_overflow();
            return Value::integer(r);
        }
        if (nums) return Value::number(a.as_double() + b.as_double());
        if (a.is_markup()) {
            if (!b.is_string()) unsupported();
            std::string joined = a.str() + markup_operand(b);
            in.check_string_size(joined.size());
            return Value::markup(std::move(joined));
        }
        if (a.is_string() && b.is_markup()) {  // Markup.__radd__ runs first (a str subclass)
            std::string joined = html_escape(a.str()) + b.str();
            in.check_string_size(joined.size());
            return Value::markup(std::move(joined));
        }
        if (a.is_string()) {
            if (!b.is_string()) type_error("can only concatenate str (not \"", type_name(b), "\") to str");
            in.check_string_size(a.str().size() + b.str().size());
            return Value::string(a.str() + b.str());
        }
        if (a.is_list() && a.list_data().view == ListView::Plain) {
            if (!b.is_list() || b.is_tuple() != a.is_tuple() || b.list_data().view != ListView::Plain)
                type_error("can only concatenate ", type_name(a), " (not \"", type_name(b), "\") to ", type_name(a));
            std::vector<Value> items = a.items();
            items.insert(items.end(), b.items().begin(), b.items().end());
            return Value::list(std::move(items), a.is_tuple());
        }
        return unsupported();
    }
    if (op == "-") {
        int64_t r;
        if (ints) {
            if (sub_overflow(a.as_int(), b.as_int(), r)) int_overflow();
            return Value::integer(r);
        }
        if (nums) return Value::number(a.as_double() - b.as_double());
        return unsupported();
    }
    if (op == "*") {
        int64_t r;
        if (ints) {
            if (mul_overflow(a.as_int(), b.as_int(), r)) int_overflow();
            return Value::integer(r);
        }
        if (nums) return Value::number(a.as_double() * b.as_double());
        if ((a.is_string() || a.is_plain_list()) && (b.is_int() || b.is_bool())) return repeat(in, a, b.as_int());
        if ((b.is_string() || b.is_plain_list()) && (a.is_int() || a.is_bool())) return repeat(in, b, a.as_int());
        if (a.is_string() || b.is_string() || a.is_plain_list() || b.is_plain_list())
            type_error("can't multiply sequence by non-int of type '", type_name(a.is_number() ? a : b), "'");
        return unsupported();
    }
    if (op == "/") {
        if (!nums) return unsupported();
        if (b.as_double() == 0.0) type_error("division by zero");
        return Value::number(a.as_double() / b.as_double());
    }
    if (op == "//" || op == "%") {
        if (op == "%" && a.is_string()) {
            std::vector<Value> args;
            if (b.is_tuple())
                args = b.items();
            else
                args.push_back(b);
            // a mapping-like operand (list, dict, range) does not need to be consumed
            std::string r = py_percent_format(a.str(), args, mapping_like(b));
            in.check_string_size(r.size());
            return Value::string(std::move(r));
        }
        if (ints) {
            const int64_t x = a.as_int(), y = b.as_int();
            if (y == 0) type_error("integer division or modulo by zero");
            if (x == std::numeric_limits<int64_t>::min() && y == -1) int_overflow();
            int64_t q = x / y, m = x % y;
            if (m != 0 && ((m < 0) != (y < 0))) {
                m += y;
                q -= 1;
            }
            return Value::integer(op == "//" ? q : m);
        }
        if (nums) {
            double fd, md;
            py_float_divmod(a.as_double(), b.as_double(), fd, md);
            return Value::number(op == "//" ? fd : md);
        }
        return unsupported();
    }
    if (op == "**") {
        if (ints && b.as_int() >= 0) {
            int64_t base = a.as_int(), e = b.as_int(), r = 1;
            while (e > 0) {
                if (e & 1)
                    if (mul_overflow(r, base, r)) int_overflow();
                e >>= 1;
                if (e > 0 && mul_overflow(base, base, base)) int_overflow();
            }
            return Value::integer(r);
        }
        if (nums) {
            if (a.as_double() == 0.0 && b.as_double() < 0) type_error("0.0 cannot be raised to a negative power");
            return Value::number(std::pow(a.as_double(), b.as_double()));
        }
        return unsupported();
    }
    type_error("unknown operator ", op);
}

// ---------------------------------------------------------------------------------------------
// scopes

const Value *Scope::find(const std::string &name) const {
    for (const Scope *s = this; s; s = s->parent_.get()) {
        auto it = s->vars_.find(name);
        if (it != s->vars_.end()) return &it->second;
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// interpreter

std::string Interpreter::render(const Program &program, const DictData &vars) {
    auto globals = std::make_shared<Scope>(nullptr);
    install_builtins(*globals);
    auto root = std::make_shared<Scope>(globals);
    for (const auto &kv : vars.entries) root->set(kv.first.str(), kv.second);
    std::string out;
    exec(program.body, root, out);
    return out;
}

void Interpreter::check_string_size(size_t bytes) const {
    if (bytes > limits_.max_output_bytes)
        type_error("a string would exceed the size limit of ", limits_.max_output_bytes, " bytes");
}

void Interpreter::count_iterations(uint64_t n) {
    iterations_ += n;
    if (iterations_ > limits_.max_loop_iterations)
        type_error("the template exceeded the limit of ", limits_.max_loop_iterations, " loop iterations");
}

void Interpreter::append(std::string &out, const std::string &text) {
    output_bytes_ += text.size();
    if (output_bytes_ > limits_.max_output_bytes)
        type_error("the rendered output exceeds the limit of ", limits_.max_output_bytes, " bytes");
    out += text;
}

Value Interpreter::call(const Value &callee, CallArgs &args) {
    if (callee.is_undefined()) fail_undefined(callee);
    if (!callee.is_function()) type_error("'", type_name(callee), "' object is not callable");
    return callee.func().fn(*this, args);
}

Value Interpreter::getattr(const Value &obj, const std::string &name) { return get_attribute(*this, obj, name); }

Value Interpreter::getitem(const Value &obj, const Value &key) { return get_item(*this, obj, key); }

Interpreter::Flow Interpreter::exec(const NodeList &body, const ScopePtr &scope, std::string &out) {
    for (const auto &node : body) {
        const Flow f = exec_node(*node, scope, out);
        if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
}

std::string Interpreter::render_body(const NodeList &body, const ScopePtr &scope) {
    std::string s;
    exec(body, scope, s);
    return s;
}

Interpreter::Flow Interpreter::exec_node(const Node &node, const ScopePtr &scope, std::string &out) {
    try {
        switch (node.type) {
            case NodeType::Output:
                for (const auto &item : static_cast<const OutputNode &>(node).items) {
                    if (item->type == NodeType::Data)
                        append(out, static_cast<const DataNode &>(*item).text);
                    else
                        append(out, output_str(eval(*item, scope)));
                }
                return Flow::Normal;
            case NodeType::If: {
                const auto &n = static_cast<const IfNode &>(node);
                return exec(eval(*n.test, scope).truthy() ? n.body : n.else_body, scope, out);
            }
            case NodeType::For: return exec_for(static_cast<const ForNode &>(node), scope, out);
            case NodeType::Assign: {
                const auto &n = static_cast<const AssignNode &>(node);
                assign(*n.target, eval(*n.value, scope), scope);
                return Flow::Normal;
            }
            case NodeType::AssignBlock: {
                const auto &n = static_cast<const AssignBlockNode &>(node);
                Value v = Value::string(render_body(n.body, std::make_shared<Scope>(scope)));
                if (n.filter) v = eval_filter(static_cast<const FilterNode &>(*n.filter), scope, &v);
                assign(*n.target, v, scope);
                return Flow::Normal;
            }
            case NodeType::Macro: {
                const auto &n = static_cast<const MacroNode &>(node);
                scope->set(n.name, make_macro(n, scope));
                return Flow::Normal;
            }
            case NodeType::FilterBlock: {
                const auto &n = static_cast<const FilterBlockNode &>(node);
                const Value body = Value::string(render_body(n.body, std::make_shared<Scope>(scope)));
                append(out, py_str(eval_filter(static_cast<const FilterNode &>(*n.filter), scope, &body)));
                return Flow::Normal;
            }
            case NodeType::With: {
                const auto &n = static_cast<const WithNode &>(node);
                std::vector<Value> values;
                for (const auto &a : n.assigns) values.push_back(eval(*a.second, scope));
                auto child = std::make_shared<Scope>(scope);
                for (size_t k = 0; k < n.assigns.size(); ++k) assign(*n.assigns[k].first, values[k], child);
                return exec(n.body, child, out);
            }
            case NodeType::Scope:
                return exec(static_cast<const ScopeNode &>(node).body, std::make_shared<Scope>(scope), out);
            case NodeType::Break: return Flow::Break;
            case NodeType::Continue: return Flow::Continue;
            default: render_error(node.pos, "internal error: unexpected node in a statement list");
        }
    } catch (const eval_error &e) {
        render_error(node.pos, e.message);
    }
}

Interpreter::Flow Interpreter::exec_for(const ForNode &node, const ScopePtr &scope, std::string &out) {
    const Value iterable = eval(*node.iter, scope);
    std::vector<Value> items;
    try {
        items = py_iterate(iterable);
    } catch (const eval_error &e) {
        render_error(node.iter->pos, e.message);
    }
    if (node.filter) {
        std::vector<Value> kept;
        for (const Value &item : items) {
            count_iterations(1);
            auto fs = std::make_shared<Scope>(scope);
            assign(*node.target, item, fs);
            if (eval(*node.filter, fs).truthy()) kept.push_back(item);
        }
        items = std::move(kept);
    }
    const size_t n = items.size();
    if (n == 0) return exec(node.else_body, std::make_shared<Scope>(scope), out);
    auto changed_state = std::make_shared<std::optional<std::vector<Value>>>();
    for (size_t k = 0; k < n; ++k) {
        count_iterations(1);
        auto body_scope = std::make_shared<Scope>(scope);
        auto loop = std::make_shared<ObjectData>();
        loop->type_name = "LoopContext";
        DictData &a = loop->attrs;
        const auto i = static_cast<int64_t>(k), len = static_cast<int64_t>(n);
        a.set(Value::string("index"), Value::integer(i + 1));
        a.set(Value::string("index0"), Value::integer(i));
        a.set(Value::string("revindex"), Value::integer(len - i));
        a.set(Value::string("revindex0"), Value::integer(len - i - 1));
        a.set(Value::string("first"), Value::boolean(k == 0));
        a.set(Value::string("last"), Value::boolean(k + 1 == n));
        a.set(Value::string("length"), Value::integer(len));
        a.set(Value::string("depth"), Value::integer(1));
        a.set(Value::string("depth0"), Value::integer(0));
        a.set(Value::string("previtem"), k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
        a.set(Value::string("nextitem"), k + 1 < n ? items[k + 1] : Value::undefined("there is no next item"));
        a.set(Value::string("cycle"), Value::function("loop.cycle", [i](Interpreter &, CallArgs &args) {
                  if (args.positional.empty()) type_error("no items for cycling given");
                  return args.positional[static_cast<size_t>(i) % args.positional.size()];
              }));
        a.set(Value::string("changed"), Value::function("loop.changed", [changed_state](Interpreter &, CallArgs &args) {
                  bool changed = true;
                  if (*changed_state) {
                      const auto &prev = **changed_state;
                      changed = prev.size() != args.positional.size();
                      for (size_t j = 0; !changed && j < prev.size(); ++j) changed = !py_equal(prev[j], args.positional[j]);
                  }
                  if (changed) *changed_state = args.positional;
                  return Value::boolean(changed);
              }));
        body_scope->set("loop", Value::object(loop));
        assign(*node.target, items[k], body_scope);
        if (exec(node.body, body_scope, out) == Flow::Break) break;
    }
    return Flow::Normal;
}

void Interpreter::assign(const Node &target, const Value &value, const ScopePtr &scope) {
    switch (target.type) {
        case NodeType::Name: scope->set(static_cast<const NameNode &>(target).name, value); return;
        case NodeType::List: {
            const auto &t = static_cast<const ListNode &>(target);
            std::vector<Value> parts;
            try {
                parts = py_iterate(value);
            } catch (const eval_error &e) {
                render_error(target.pos, "cannot unpack: ", e.message);
            }
            if (parts.size() > t.items.size())
                render_error(target.pos, "too many values to unpack (expected ", t.items.size(), ")");
            if (parts.size() < t.items.size())
                render_error(target.pos, "not enough values to unpack (expected ", t.items.size(), ", got ", parts.size(), ")");
            for (size_t k = 0; k < parts.size(); ++k) assign(*t.items[k], parts[k], scope);
            return;
        }
        case NodeType::NSRef: {
            const auto &t = static_cast<const NSRefNode &>(target);
            const Value *ns = scope->find(t.name);
            if (!ns || !ns->is_object() || !ns->object_data().assignable)
                render_error(target.pos, "cannot assign attribute '", t.attr, "' on '", t.name,
                             "': it is not a namespace() object");
            if (!t.attr.empty() && t.attr[0] == '_')
                render_error(target.pos, "Chat templates cannot store underscore-prefixed attributes on a namespace, but got '",
                             t.attr, "'. Please rename the attribute.");
            ns->object_data().attrs.set(Value::string(t.attr), value);
            return;
        }
        default: render_error(target.pos, "cannot assign to this expression");
    }
}

Interpreter::~Interpreter() {
    for (auto &box : closures_) box->reset();
}

Value Interpreter::make_macro(const MacroNode &node, const ScopePtr &scope) {
    const MacroNode *mn = &node;
    auto box = std::make_shared<ScopePtr>(scope);
    closures_.push_back(box);
    return Value::function(node.name, [mn, box](Interpreter &in, CallArgs &args) {
        const MacroNode &n = *mn;
        const ScopePtr closure = *box;
        if (!closure) type_error("macro '", n.name, "' called after its render ended");
        if (in.call_depth_ + 1 > in.limits_.max_call_depth)
            type_error("macro calls nested more than ", in.limits_.max_call_depth, " levels deep (runaway recursion?)");
        if (args.positional.size() > n.params.size())
            type_error("macro '", n.name, "' takes not more than ", n.params.size(), " argument(s)");
        auto ms = std::make_shared<Scope>(closure);
        std::vector<bool> bound(n.params.size(), false);
        for (size_t k = 0; k < args.positional.size(); ++k) {
            ms->set(n.params[k], args.positional[k]);
            bound[k] = true;
        }
        for (const auto &kw : args.keyword) {
            size_t k = 0;
            while (k < n.params.size() && n.params[k] != kw.first) ++k;
            if (k == n.params.size()) type_error("macro '", n.name, "' takes no keyword argument '", kw.first, "'");
            if (bound[k]) type_error("macro '", n.name, "' got multiple values for argument '", kw.first, "'");
            ms->set(kw.first, kw.second);
            bound[k] = true;
        }
        const size_t first_default = n.params.size() - n.defaults.size();
        for (size_t k = 0; k < n.params.size(); ++k) {
            if (bound[k]) continue;
            if (k >= first_default)
                ms->set(n.params[k], in.eval(*n.defaults[k - first_default], ms));
            else
                ms->set(n.params[k], Value::undefined("parameter '" + n.params[k] + "' was not provided"));
        }
        ++in.call_depth_;
        struct Unwind {
            int &d;
            ~Unwind() { --d; }
        } unwind{in.call_depth_};
        return Value::string(in.render_body(n.body, ms));
    });
}

// ---------------------------------------------------------------------------------------------
// expressions

Value Interpreter::eval(const Node &node, const ScopePtr &scope) {
    try {
        return eval_inner(node, scope);
    } catch (const eval_error &e) {
        render_error(node.pos, e.message);
    } catch (const template_exception &e) {
        render_error(node.pos, "the template raised an error: ", e.message);
    }
}

void Interpreter::eval_args(const NodeList &args, const KwArgs &kwargs, const ScopePtr &scope, CallArgs &out) {
    for (const auto &a : args) out.positional.push_back(eval(*a, scope));
    for (const auto &kw : kwargs) out.keyword.emplace_back(kw.first, eval(*kw.second, scope));
}

Value Interpreter::eval_filter(const FilterNode &node, const ScopePtr &scope, const Value *implicit) {
    Value input;
    if (!node.operand) {
        if (!implicit) render_error(node.pos, "internal error: filter without input");
        input = *implicit;
    } else if (node.operand->type == NodeType::Filter) {
        input = eval_filter(static_cast<const FilterNode &>(*node.operand), scope, implicit);
    } else {
        input = eval(*node.operand, scope);
    }
    CallArgs args;
    eval_args(node.args, node.kwargs, scope, args);
    try {
        return apply_filter(*this, node.name, input, args);
    } catch (const eval_error &e) {
        render_error(node.pos, "filter '", node.name, "': ", e.message);
    }
}

Value py_unary(const std::string &op, const Value &v) {
    if (op == "not") return Value::boolean(!v.truthy());
    if (v.is_undefined()) fail_undefined(v);
    if (op == "-") {
        if (v.is_float()) return Value::number(-v.as_double());
        if (v.is_int() || v.is_bool()) {
            if (v.as_int() == std::numeric_limits<int64_t>::min()) int_overflow();
            return Value::integer(-v.as_int());
        }
    } else if (v.is_number()) {
        return v.is_bool() ? Value::integer(v.as_int()) : v;
    }
    type_error("bad operand type for unary ", op, ": '", type_name(v), "'");
}

bool py_compare_op(const std::string &op, const Value &a, const Value &b) {
    if (op == "==") return py_equal(a, b);
    if (op == "!=") return !py_equal(a, b);
    if (op == "in") return py_contains(b, a);
    if (op == "notin") return !py_contains(b, a);
    if (a.is_undefined()) fail_undefined(a);
    if (b.is_undefined()) fail_undefined(b);
    const int c = py_compare(a, b, op.c_str());
    if (op == "<") return c < 0;
    if (op == "<=") return c <= 0;
    if (op == ">") return c > 0;
    return c >= 0;
}

Value Interpreter::eval_inner(const Node &node, const ScopePtr &scope) {
    switch (node.type) {
        case NodeType::Const: return static_cast<const ConstNode &>(node).value;
        case NodeType::Name: {
            const auto &n = static_cast<const NameNode &>(node);
            const Value *v = scope->find(n.name);
            return v ? *v : Value::undefined("'" + n.name + "' is undefined");
        }
        case NodeType::List: {
            const auto &n = static_cast<const ListNode &>(node);
            std::vector<Value> items;
            items.reserve(n.items.size());
            for (const auto &item : n.items) {
                if (item->type == NodeType::Slice) render_error(item->pos, "slices are only allowed inside [ ]");
                items.push_back(eval(*item, scope));
            }
            return Value::list(std::move(items), n.tuple);
        }
        case NodeType::Dict: {
            const auto &n = static_cast<const DictNode &>(node);
            DictData d;
            for (const auto &kv : n.items) {
                Value k = eval(*kv.first, scope);
                d.set(k, eval(*kv.second, scope));
            }
            return Value::dict(std::move(d));
        }
        case NodeType::Getattr: {
            const auto &n = static_cast<const GetattrNode &>(node);
            return getattr(eval(*n.obj, scope), n.attr);
        }
        case NodeType::Getitem: {
            const auto &n = static_cast<const GetitemNode &>(node);
            const Value obj = eval(*n.obj, scope);
            if (n.index->type == NodeType::Slice) {
                const auto &s = static_cast<const SliceNode &>(*n.index);
                const Value start = s.start ? eval(*s.start, scope) : Value::none();
                const Value stop = s.stop ? eval(*s.stop, scope) : Value::none();
                const Value step = s.step ? eval(*s.step, scope) : Value::none();
                // At run time Jinja compiles a slice to a plain Python subscript (constant
                // expressions were folded by jinja_optimizer with as_const semantics).
                return get_slice(obj, start, stop, step);
            }
            return getitem(obj, eval(*n.index, scope));
        }
        case NodeType::Slice: render_error(node.pos, "slices are only allowed inside [ ]");
        case NodeType::Call: {
            const auto &n = static_cast<const CallNode &>(node);
            const Value callee = eval(*n.callee, scope);
            CallArgs args;
            eval_args(n.args, n.kwargs, scope, args);
            return call(callee, args);
        }
        case NodeType::Filter: return eval_filter(static_cast<const FilterNode &>(node), scope, nullptr);
        case NodeType::Test: {
            const auto &n = static_cast<const TestNode &>(node);
            const Value v = eval(*n.operand, scope);
            CallArgs args;
            eval_args(n.args, n.kwargs, scope, args);
            return Value::boolean(apply_test(*this, n.name, v, args));
        }
        case NodeType::Unary: {
            const auto &n = static_cast<const UnaryNode &>(node);
            return py_unary(n.op, eval(*n.operand, scope));
        }
        case NodeType::Binary: {
            const auto &n = static_cast<const BinaryNode &>(node);
            if (n.op == "and") {
                Value a = eval(*n.left, scope);
                return a.truthy() ? eval(*n.right, scope) : a;
            }
            if (n.op == "or") {
                Value a = eval(*n.left, scope);
                return a.truthy() ? a : eval(*n.right, scope);
            }
            const Value a = eval(*n.left, scope);
            const Value b = eval(*n.right, scope);
            return py_binary(*this, n.op, a, b);
        }
        case NodeType::Concat: {
            std::string s;
            for (const auto &part : static_cast<const ConcatNode &>(node).parts) {
                s += output_str(eval(*part, scope));
                check_string_size(s.size());
            }
            return Value::string(std::move(s));
        }
        case NodeType::Compare: {
            const auto &n = static_cast<const CompareNode &>(node);
            Value left = eval(*n.first, scope);
            for (const auto &op : n.ops) {
                Value right = eval(*op.second, scope);
                if (!py_compare_op(op.first, left, right)) return Value::boolean(false);
                left = std::move(right);
            }
            return Value::boolean(true);
        }
        case NodeType::CondExpr: {
            const auto &n = static_cast<const CondExprNode &>(node);
            if (eval(*n.test, scope).truthy()) return eval(*n.then_expr, scope);
            if (n.else_expr) return eval(*n.else_expr, scope);
            return Value::undefined("the inline if-expression evaluated to false and has no else branch");
        }
        default: render_error(node.pos, "internal error: unexpected node in an expression");
    }
}

}  // namespace eurollm::chat::jinja
