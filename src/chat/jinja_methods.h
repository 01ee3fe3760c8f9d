// Attribute and item access as Jinja's ImmutableSandboxedEnvironment performs them
// (`obj.name` tries the Python attribute first and then obj['name']; `obj[key]` the other way
// round; misses give Undefined), and the Python methods templates call on str, dict and list
// values (.strip(), .split(), .startswith(), .items(), .get(), ...). Methods that would mutate
// a value are refused, as the immutable sandbox refuses them.
#pragma once

#include <string>

#include "chat/jinja_value.h"

namespace eurollm::chat::jinja {

Value get_attribute(Interpreter &in, const Value &obj, const std::string &name);
Value get_item(Interpreter &in, const Value &obj, const Value &key);
Value get_slice(const Value &obj, const Value &start, const Value &stop, const Value &step);

// Python str.split / str.join helpers shared with filters.
std::vector<std::string> py_split(const std::string &s, const std::string *sep, int64_t maxsplit);
std::string py_replace(const std::string &s, const std::string &old, const std::string &repl, int64_t count);

// Binds positional and keyword arguments to parameter names, Python-style.
class ArgBinder {
public:
    ArgBinder(const std::string &fname, CallArgs &args, std::initializer_list<const char *> names);
    bool has(size_t i) const { return slots_[i] != nullptr; }
    const Value &get(size_t i) const { return *slots_[i]; }
    Value get_or(size_t i, Value def) const { return slots_[i] ? *slots_[i] : std::move(def); }
    const std::string &fname() const { return fname_; }

private:
    std::string fname_;
    std::vector<const Value *> slots_;
};

// Type checks with Python-like messages ("strip() argument 1 must be str, not int").
const std::string &need_str(const ArgBinder &b, size_t i, const char *what);
int64_t need_int(const ArgBinder &b, size_t i, const char *what);

}  // namespace eurollm::chat::jinja
