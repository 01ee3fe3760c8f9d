// The values a template computes with, modelled on the Python objects Jinja2 sees when
// transformers renders a chat template: None, bool, int, float, str, list/tuple, dict (insertion
// ordered), Jinja's Undefined, namespace/loop objects and callables. Conversions follow Python:
// str() and repr() of every value, ==, <, truthiness, and json.dumps for the tojson filter.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace eurollm::chat::jinja {

class Value;
class Interpreter;

struct CallArgs {
    std::vector<Value> positional;
    std::vector<std::pair<std::string, Value>> keyword;
};

using NativeFn = std::function<Value(Interpreter &, CallArgs &)>;

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Object, Function };

// dict_keys / dict_values / dict_items print differently from a list but behave like one.
// range objects keep their start/stop/step for printing and slicing.
enum class ListView { Plain, Keys, Values, Items, Range };

struct ListData;
struct DictData;
struct ObjectData;
struct FuncData;

class Value {
public:
    Value() = default;  // Undefined without a hint
    static Value undefined(std::string hint);
    static Value none();
    static Value boolean(bool v);
    static Value integer(int64_t v);
    static Value number(double v);
    static Value string(std::string v);
    // markupsafe.Markup: a str that Jinja's |safe and |escape produce. `Markup + str` escapes the
    // str, as do Markup's % and its string methods' arguments.
    static Value markup(std::string v);
    static Value list(std::vector<Value> items, bool tuple = false, ListView view = ListView::Plain);
    static Value range(int64_t start, int64_t stop, int64_t step, std::vector<Value> items);
    static Value dict(DictData d);
    static Value object(std::shared_ptr<ObjectData> o);
    static Value function(std::string name, NativeFn fn);

    Kind kind() const { return kind_; }
    bool is_undefined() const { return kind_ == Kind::Undefined; }
    bool is_none() const { return kind_ == Kind::None; }
    bool is_bool() const { return kind_ == Kind::Bool; }
    bool is_int() const { return kind_ == Kind::Int; }
    bool is_float() const { return kind_ == Kind::Float; }
    bool is_number() const { return kind_ == Kind::Int || kind_ == Kind::Float || kind_ == Kind::Bool; }
    bool is_string() const { return kind_ == Kind::String; }
    bool is_markup() const { return kind_ == Kind::String && markup_; }
    bool is_list() const { return kind_ == Kind::List; }
    bool is_dict() const { return kind_ == Kind::Dict; }
    bool is_object() const { return kind_ == Kind::Object; }
    bool is_function() const { return kind_ == Kind::Function; }

    bool as_bool() const { return b_; }
    int64_t as_int() const { return kind_ == Kind::Bool ? (b_ ? 1 : 0) : i_; }
    double as_double() const;  // for Int/Float/Bool
    const std::string &str() const { return s_; }  // String: its text; Undefined: its hint
    const ListData &list_data() const { return *list_; }
    const std::vector<Value> &items() const;
    bool is_tuple() const;
    bool is_plain_list() const;  // a list or tuple (not a range or dict view)
    const DictData &dict_data() const { return *dict_; }
    ObjectData &object_data() const { return *obj_; }
    const FuncData &func() const { return *fn_; }
    const void *identity() const;  // for `is sameas` on containers

    bool truthy() const;

private:
    Kind kind_ = Kind::Undefined;
    bool b_ = false;
    bool markup_ = false;
    int64_t i_ = 0;
    double f_ = 0.0;
    std::string s_;
    std::shared_ptr<const ListData> list_;
    std::shared_ptr<const DictData> dict_;
    std::shared_ptr<ObjectData> obj_;
    std::shared_ptr<const FuncData> fn_;
};

struct ListData {
    std::vector<Value> items;
    bool tuple = false;
    ListView view = ListView::Plain;
    int64_t range_start = 0, range_stop = 0, range_step = 1;
};

// Insertion-ordered mapping with Python's key semantics (1 == 1.0 == True as keys).
struct DictData {
    std::vector<std::pair<Value, Value>> entries;
    std::unordered_map<std::string, size_t> index;

    const Value *find(const Value &key) const;  // throws on unhashable keys
    const Value *find(const std::string &key) const;
    void set(const Value &key, Value value);
    size_t size() const { return entries.size(); }
};

// Attribute bags: jinja2 Namespace (assignable) and LoopContext, cycler and the like.
struct ObjectData {
    std::string type_name;
    bool assignable = false;
    DictData attrs;  // string keys
};

struct FuncData {
    std::string name;
    NativeFn fn;
};

// markupsafe.escape of a plain string: & < > ' " become entities.
std::string html_escape(const std::string &s);
// The string as Markup + would append it: escaped unless it is Markup already.
std::string markup_operand(const Value &v);

// Key used for dict lookups; throws eval_error for unhashable values.
std::string hash_key(const Value &v);

const char *type_name(const Value &v);
std::string py_str(const Value &v);
std::string py_repr(const Value &v);
std::string py_float_repr(double d);
std::string py_str_repr(const std::string &s);

bool py_equal(const Value &a, const Value &b);
// Python ordering (<): -1, 0, 1; throws eval_error when the types are not orderable.
int py_compare(const Value &a, const Value &b, const char *op = "<");

struct json_options {
    bool ensure_ascii = false;
    std::optional<std::string> indent;  // nullopt = single line
    std::string item_separator = ", ";
    std::string key_separator = ": ";
    bool sort_keys = false;
};
std::string py_json_dumps(const Value &v, const json_options &opts);

Value from_json(const nlohmann::ordered_json &j);
Value from_json(const nlohmann::json &j);

}  // namespace eurollm::chat::jinja
