#include "chat/jinja_optimizer.h"

#include <optional>

#include "chat/jinja_error.h"
#include "chat/jinja_eval.h"
#include "chat/jinja_filters.h"
#include "chat/jinja_methods.h"

namespace eurollm::chat::jinja {

namespace {

// Folding runs at compile time, before the caller's limits are known: it stays small, and an
// expression too big to fold is simply left for run time.
render_limits fold_limits() {
    render_limits l;
    l.max_output_bytes = size_t(1) << 20;
    l.max_loop_iterations = 100000;
    l.max_call_depth = 8;
    return l;
}

// Python's nodes.has_safe_repr: values that can be written back as a literal.
bool safe_repr(const Value &v) {
    switch (v.kind()) {
        case Kind::None:
        case Kind::Bool:
        case Kind::Int:
        case Kind::Float:
        case Kind::String: return true;
        case Kind::List: {
            const ListView view = v.list_data().view;
            if (view != ListView::Plain && view != ListView::Range) return false;
            for (const Value &item : v.items())
                if (!safe_repr(item)) return false;
            return true;
        }
        case Kind::Dict:
            for (const auto &kv : v.dict_data().entries)
                if (!safe_repr(kv.first) || !safe_repr(kv.second)) return false;
            return true;
        default: return false;
    }
}

class Folder {
public:
    Folder() : in_(fold_limits()) {}

    // Expr.as_const: the value, or nullopt where Jinja raises Impossible.
    std::optional<Value> fold(const Node &node) {
        try {
            return fold_inner(node);
        } catch (const eval_error &) {
            return std::nullopt;
        } catch (const eurollm::error &) {
            return std::nullopt;
        } catch (const Impossible &) {
            return std::nullopt;
        }
    }

    void optimize_body(NodeList &body) {
        for (auto &stmt : body) optimize_statement(*stmt);
    }

private:
    struct Impossible {};

    Value need(const Node &node) {
        std::optional<Value> v = fold_inner_opt(node);
        if (!v) throw Impossible{};
        return *v;
    }
    std::optional<Value> fold_inner_opt(const Node &node) { return fold_inner(node); }

    void args_of(const NodeList &args, const KwArgs &kwargs, CallArgs &out) {
        for (const auto &a : args) out.positional.push_back(need(*a));
        for (const auto &kw : kwargs) out.keyword.emplace_back(kw.first, need(*kw.second));
    }

    Value fold_inner(const Node &node) {
        switch (node.type) {
            case NodeType::Const: return static_cast<const ConstNode &>(node).value;
            case NodeType::List: {
                const auto &n = static_cast<const ListNode &>(node);
                std::vector<Value> items;
                for (const auto &i : n.items) {
                    if (i->type == NodeType::Slice) throw Impossible{};
                    items.push_back(need(*i));
                }
                return Value::list(std::move(items), n.tuple);
            }
            case NodeType::Dict: {
                DictData d;
                for (const auto &kv : static_cast<const DictNode &>(node).items) {
                    Value k = need(*kv.first);
                    d.set(k, need(*kv.second));
                }
                return Value::dict(std::move(d));
            }
            case NodeType::Unary: {
                const auto &n = static_cast<const UnaryNode &>(node);
                return py_unary(n.op, need(*n.operand));
            }
            case NodeType::Binary: {
                const auto &n = static_cast<const BinaryNode &>(node);
                if (n.op == "and") {
                    Value a = need(*n.left);
                    return a.truthy() ? need(*n.right) : a;
                }
                if (n.op == "or") {
                    Value a = need(*n.left);
                    return a.truthy() ? a : need(*n.right);
                }
                const Value a = need(*n.left);
                const Value b = need(*n.right);
                return py_binary(in_, n.op, a, b);
            }
            case NodeType::Concat: {
                std::string s;
                for (const auto &p : static_cast<const ConcatNode &>(node).parts) {
                    s += output_str(need(*p));
                    in_.check_string_size(s.size());
                }
                return Value::string(std::move(s));
            }
            case NodeType::Compare: {
                const auto &n = static_cast<const CompareNode &>(node);
                Value left = need(*n.first);
                for (const auto &op : n.ops) {
                    Value right = need(*op.second);
                    if (!py_compare_op(op.first, left, right)) return Value::boolean(false);
                    left = std::move(right);
                }
                return Value::boolean(true);
            }
            case NodeType::CondExpr: {
                const auto &n = static_cast<const CondExprNode &>(node);
                if (need(*n.test).truthy()) return need(*n.then_expr);
                if (!n.else_expr) throw Impossible{};  // "evaluate to an undefined object at runtime"
                return need(*n.else_expr);
            }
            case NodeType::Filter: {
                const auto &n = static_cast<const FilterNode &>(node);
                if (!n.operand) throw Impossible{};
                // @pass_context filters are never folded (Filter.as_const)
                if (n.name == "map" || n.name == "select" || n.name == "reject" || n.name == "selectattr" ||
                    n.name == "rejectattr")
                    throw Impossible{};
                const Value input = need(*n.operand);
                CallArgs args;
                args_of(n.args, n.kwargs, args);
                return apply_filter(in_, n.name, input, args);
            }
            case NodeType::Test: {
                const auto &n = static_cast<const TestNode &>(node);
                const Value input = need(*n.operand);
                CallArgs args;
                args_of(n.args, n.kwargs, args);
                return Value::boolean(apply_test(in_, n.name, input, args));
            }
            case NodeType::Getattr: {
                const auto &n = static_cast<const GetattrNode &>(node);
                return get_attribute(in_, need(*n.obj), n.attr);
            }
            case NodeType::Getitem: {
                const auto &n = static_cast<const GetitemNode &>(node);
                const Value obj = need(*n.obj);
                if (n.index->type != NodeType::Slice) return get_item(in_, obj, need(*n.index));
                const auto &s = static_cast<const SliceNode &>(*n.index);
                const Value start = s.start ? need(*s.start) : Value::none();
                const Value stop = s.stop ? need(*s.stop) : Value::none();
                const Value step = s.step ? need(*s.step) : Value::none();
                // environment.getitem: a TypeError / LookupError gives Undefined; Undefined's own
                // error (and ValueError, e.g. a zero step) makes the fold impossible.
                if (obj.is_undefined()) throw Impossible{};
                if ((step.is_int() || step.is_bool()) && step.as_int() == 0) throw Impossible{};
                try {
                    return get_slice(obj, start, stop, step);
                } catch (const eval_error &) {
                    return Value::undefined("'" + std::string(type_name(obj)) + " object' has no attribute slice");
                }
            }
            default: throw Impossible{};  // names, calls
        }
    }

    // Optimizer.generic_visit: children first, then the node itself if its value is a literal.
    void optimize_expr(NodePtr &node) {
        if (!node) return;
        switch (node->type) {
            case NodeType::List:
                for (auto &i : static_cast<ListNode &>(*node).items) optimize_expr(i);
                break;
            case NodeType::Dict:
                for (auto &kv : static_cast<DictNode &>(*node).items) {
                    optimize_expr(kv.first);
                    optimize_expr(kv.second);
                }
                break;
            case NodeType::Getattr: optimize_expr(static_cast<GetattrNode &>(*node).obj); break;
            case NodeType::Getitem: {
                auto &n = static_cast<GetitemNode &>(*node);
                optimize_expr(n.obj);
                if (n.index->type == NodeType::Slice) {
                    auto &s = static_cast<SliceNode &>(*n.index);
                    optimize_expr(s.start);
                    optimize_expr(s.stop);
                    optimize_expr(s.step);
                } else {
                    optimize_expr(n.index);
                }
                break;
            }
            case NodeType::Call: {
                auto &n = static_cast<CallNode &>(*node);
                optimize_expr(n.callee);
                for (auto &a : n.args) optimize_expr(a);
                for (auto &kw : n.kwargs) optimize_expr(kw.second);
                return;  // a call never folds
            }
            case NodeType::Filter: {
                auto &n = static_cast<FilterNode &>(*node);
                optimize_expr(n.operand);
                for (auto &a : n.args) optimize_expr(a);
                for (auto &kw : n.kwargs) optimize_expr(kw.second);
                break;
            }
            case NodeType::Test: {
                auto &n = static_cast<TestNode &>(*node);
                optimize_expr(n.operand);
                for (auto &a : n.args) optimize_expr(a);
                for (auto &kw : n.kwargs) optimize_expr(kw.second);
                break;
            }
            case NodeType::Unary: optimize_expr(static_cast<UnaryNode &>(*node).operand); break;
            case NodeType::Binary: {
                auto &n = static_cast<BinaryNode &>(*node);
                optimize_expr(n.left);
                optimize_expr(n.right);
                break;
            }
            case NodeType::Concat:
                for (auto &p : static_cast<ConcatNode &>(*node).parts) optimize_expr(p);
                break;
            case NodeType::Compare: {
                auto &n = static_cast<CompareNode &>(*node);
                optimize_expr(n.first);
                for (auto &op : n.ops) optimize_expr(op.second);
                break;
            }
            case NodeType::CondExpr: {
                auto &n = static_cast<CondExprNode &>(*node);
                optimize_expr(n.test);
                optimize_expr(n.then_expr);
                optimize_expr(n.else_expr);
                break;
            }
            default: return;  // constants, names, assignment targets
        }
        std::optional<Value> v = fold(*node);
        if (v && safe_repr(*v)) node = std::make_unique<ConstNode>(node->pos, std::move(*v));
    }

    void optimize_statement(Node &stmt) {
        switch (stmt.type) {
            case NodeType::Output:
                for (auto &item : static_cast<OutputNode &>(stmt).items) {
                    if (item->type == NodeType::Data) continue;
                    // CodeGenerator._output_child_to_const: any value, written with str()
                    std::optional<Value> v = fold(*item);
                    if (v && !v->is_function())
                        item = std::make_unique<ConstNode>(item->pos, std::move(*v));
                    else
                        optimize_expr(item);
                }
                return;
            case NodeType::If: {
                auto &n = static_cast<IfNode &>(stmt);
                optimize_expr(n.test);
                optimize_body(n.body);
                optimize_body(n.else_body);
                return;
            }
            case NodeType::For: {
                auto &n = static_cast<ForNode &>(stmt);
                optimize_expr(n.iter);
                optimize_expr(n.filter);
                optimize_body(n.body);
                optimize_body(n.else_body);
                return;
            }
            case NodeType::Assign: optimize_expr(static_cast<AssignNode &>(stmt).value); return;
            case NodeType::AssignBlock: {
                auto &n = static_cast<AssignBlockNode &>(stmt);
                optimize_filter_args(n.filter);
                optimize_body(n.body);
                return;
            }
            case NodeType::Macro: {
                auto &n = static_cast<MacroNode &>(stmt);
                for (auto &d : n.defaults) optimize_expr(d);
                optimize_body(n.body);
                return;
            }
            case NodeType::FilterBlock: {
                auto &n = static_cast<FilterBlockNode &>(stmt);
                optimize_filter_args(n.filter);
                optimize_body(n.body);
                return;
            }
            case NodeType::With: {
                auto &n = static_cast<WithNode &>(stmt);
                for (auto &a : n.assigns) optimize_expr(a.second);
                optimize_body(n.body);
                return;
            }
            case NodeType::Scope: optimize_body(static_cast<ScopeNode &>(stmt).body); return;
            default: return;
        }
    }

    // A filter chain applied to a rendered body: only its arguments can fold.
    void optimize_filter_args(NodePtr &filter) {
        for (Node *f = filter.get(); f && f->type == NodeType::Filter;) {
            auto &n = static_cast<FilterNode &>(*f);
            for (auto &a : n.args) optimize_expr(a);
            for (auto &kw : n.kwargs) optimize_expr(kw.second);
            f = n.operand.get();
        }
    }

    Interpreter in_;
};

}  // namespace

void optimize(Program &program) {
    Folder folder;
    folder.optimize_body(program.body);
}

}  // namespace eurollm::chat::jinja
