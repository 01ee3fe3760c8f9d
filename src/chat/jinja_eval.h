// The tree-walking interpreter: scopes with Jinja2's rules (a for-loop body gets a fresh scope
// per iteration, if/elif do not open one, namespace() objects carry state out of loops), loop
// variables, macros, break/continue, and the globals transformers provides (raise_exception,
// strftime_now, namespace, dict, range, ...). Runaway templates are stopped by limits on output
// size, loop iterations and call depth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "chat/jinja_ast.h"
#include "chat/jinja_value.h"

namespace eurollm::chat::jinja {

struct render_limits {
    size_t max_output_bytes = size_t(16) << 20;  // rendered text, and any single string built
    uint64_t max_loop_iterations = 1000000;      // summed over all loops of one render
    int max_call_depth = 64;                     // nested macro calls
};

class Scope {
public:
    explicit Scope(std::shared_ptr<Scope> parent) : parent_(std::move(parent)) {}
    const Value *find(const std::string &name) const;
    void set(const std::string &name, Value v) { vars_[name] = std::move(v); }

private:
    std::unordered_map<std::string, Value> vars_;
    std::shared_ptr<Scope> parent_;
};
using ScopePtr = std::shared_ptr<Scope>;

class Interpreter {
public:
    explicit Interpreter(const render_limits &limits) : limits_(limits) {}
    ~Interpreter();
    Interpreter(const Interpreter &) = delete;
    Interpreter &operator=(const Interpreter &) = delete;

    // Renders `program` with `vars` (messages, add_generation_prompt, bos_token, ...) on top of
    // the built-in globals.
    std::string render(const Program &program, const DictData &vars);

    // Services for filters and methods.
    Value call(const Value &callee, CallArgs &args);
    Value getattr(const Value &obj, const std::string &name);
    Value getitem(const Value &obj, const Value &key);
    void check_string_size(size_t bytes) const;
    void count_iterations(uint64_t n);
    const render_limits &limits() const { return limits_; }

private:
    enum class Flow { Normal, Break, Continue };

    Flow exec(const NodeList &body, const ScopePtr &scope, std::string &out);
    Flow exec_node(const Node &node, const ScopePtr &scope, std::string &out);
    Flow exec_for(const ForNode &node, const ScopePtr &scope, std::string &out);
    void assign(const Node &target, const Value &value, const ScopePtr &scope);
    std::string render_body(const NodeList &body, const ScopePtr &scope);
    Value make_macro(const MacroNode &node, const ScopePtr &scope);

    Value eval(const Node &node, const ScopePtr &scope);
    Value eval_inner(const Node &node, const ScopePtr &scope);
    Value eval_filter(const FilterNode &node, const ScopePtr &scope, const Value *implicit);
    void eval_args(const NodeList &args, const KwArgs &kwargs, const ScopePtr &scope, CallArgs &out);
    Value eval_binary(const std::string &op, const Value &a, const Value &b);

    void append(std::string &out, const std::string &text);

    render_limits limits_;
    // A macro's closure scope usually holds the macro itself; the boxes are emptied when the
    // interpreter goes away so that the reference cycle is broken.
    std::vector<std::shared_ptr<ScopePtr>> closures_;
    size_t output_bytes_ = 0;
    uint64_t iterations_ = 0;
    int call_depth_ = 0;
};

// Arithmetic and containment with Python semantics (shared with filters).
Value py_binary(Interpreter &in, const std::string &op, const Value &a, const Value &b);
bool py_contains(const Value &container, const Value &item);
// Unary operators (not, -, +) and the comparison operators of Compare nodes.
Value py_unary(const std::string &op, const Value &v);
bool py_compare_op(const std::string &op, const Value &a, const Value &b);
// Iterating a value as Python's iter() would (dict -> keys, str -> characters).
std::vector<Value> py_iterate(const Value &v);
// Python's len().
int64_t py_len(const Value &v);
// str() of a value being written to the output (refuses functions).
std::string output_str(const Value &v);
// Raises the error carried by an Undefined value ("'x' is undefined").
[[noreturn]] void fail_undefined(const Value &v);

}  // namespace eurollm::chat::jinja
