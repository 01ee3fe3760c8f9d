#include "chat/jinja_parser.h"

#include <algorithm>
#include <vector>

#include "chat/jinja_filters.h"
#include "chat/jinja_lexer.h"

namespace eurollm::chat::jinja {

namespace {

constexpr int kMaxNesting = 200;  // expression / block nesting, guards the C++ stack

std::string describe(const Token &t) {
    switch (t.type) {
        case TokenType::Name: return "'" + t.value + "'";
        case TokenType::Operator: return "'" + t.value + "'";
        case TokenType::String: return "string";
        case TokenType::Integer:
        case TokenType::Float: return "number '" + t.value + "'";
        default: return token_type_name(t.type);
    }
}

class Parser {
public:
    explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

    std::shared_ptr<Program> run() {
        auto prog = std::make_shared<Program>();
        std::string which;
        prog->body = subparse({}, which);
        if (cur().type != TokenType::Eof) fail("unexpected ", describe(cur()));
        return prog;
    }

private:
    // ---- token stream -----------------------------------------------------------------------
    const Token &cur() const { return toks_[i_]; }
    const Token &look(size_t k = 1) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
    const Token &next() {
        const Token &t = toks_[i_];
        if (i_ + 1 < toks_.size()) ++i_;
        return t;
    }
    bool is_op(const char *op) const { return cur().type == TokenType::Operator && cur().value == op; }
    bool is_name(const char *n) const { return cur().type == TokenType::Name && cur().value == n; }
    bool skip_op(const char *op) {
        if (!is_op(op)) return false;
        next();
        return true;
    }
    bool skip_name(const char *n) {
        if (!is_name(n)) return false;
        next();
        return true;
    }

    template <typename... Parts>
    [[noreturn]] void fail(const Parts &...parts) const {
        syntax_error(cur().pos, parts...);
    }

    void expect_op(const char *op) {
        if (!is_op(op)) fail("expected '", op, "', got ", describe(cur()));
        next();
    }
    const Token &expect_name() {
        if (cur().type != TokenType::Name) fail("expected a name, got ", describe(cur()));
        return next();
    }
    void expect(TokenType t) {
        if (cur().type != t) {
            if (cur().type == TokenType::Eof && t == TokenType::VarEnd)
                fail("unexpected end of template; a '{{' tag is not closed with '}}'");
            if (cur().type == TokenType::Eof && t == TokenType::BlockEnd)
                fail("unexpected end of template; a '{%' tag is not closed with '%}'");
            if (cur().type == TokenType::Eof) fail_eof();
            fail("expected ", token_type_name(t), ", got ", describe(cur()));
        }
        next();
    }

    [[noreturn]] void fail_eof() const {
        if (end_stack_.empty()) fail("unexpected end of template");
        std::string want;
        for (const auto &e : end_stack_.back()) want += (want.empty() ? "'" : " or '") + e + "'";
        fail("unexpected end of template; looking for ", want, " to close the '", block_stack_.back(), "' block opened at line ",
             block_lines_.back());
    }

    struct DepthGuard {
        explicit DepthGuard(Parser &p) : p_(p) {
            if (++p_.depth_ > kMaxNesting) p_.fail("template nested too deeply (more than ", kMaxNesting, " levels)");
        }
        ~DepthGuard() { --p_.depth_; }
        Parser &p_;
    };

    // ---- templates and statements -------------------------------------------------------------
    NodeList subparse(const std::vector<std::string> &end_tokens, std::string &which) {
        DepthGuard guard(*this);
        NodeList body;
        for (;;) {
            const Token &t = cur();
            if (t.type == TokenType::Data) {
                auto out = std::make_unique<OutputNode>(t.pos);
                out->items.push_back(std::make_unique<DataNode>(t.pos, t.value));
                body.push_back(std::move(out));
                next();
            } else if (t.type == TokenType::VarBegin) {
                next();
                auto out = std::make_unique<OutputNode>(t.pos);
                out->items.push_back(parse_tuple(false, true, {}, false));
                body.push_back(std::move(out));
                expect(TokenType::VarEnd);
            } else if (t.type == TokenType::BlockBegin) {
                next();
                if (cur().type == TokenType::Name &&
                    std::find(end_tokens.begin(), end_tokens.end(), cur().value) != end_tokens.end()) {
                    which = cur().value;
                    return body;
                }
                body.push_back(parse_statement());
                expect(TokenType::BlockEnd);
            } else if (t.type == TokenType::Eof) {
                if (!end_tokens.empty()) fail_eof();
                return body;
            } else {
                fail("unexpected ", describe(t));
            }
        }
    }

    // Header already parsed; expects "%}", the body and stops at one of `ends`.
    NodeList parse_statements(const std::vector<std::string> &ends, bool drop_needle, std::string *which_out = nullptr) {
        expect(TokenType::BlockEnd);
        end_stack_.push_back(ends);
        std::string which;
        NodeList body = subparse(ends, which);
        end_stack_.pop_back();
        if (drop_needle) next();
        if (which_out) *which_out = which;
        return body;
    }

    struct BlockScope {
        BlockScope(Parser &p, const std::string &name, int line) : p_(p) {
            p_.block_stack_.push_back(name);
            p_.block_lines_.push_back(line);
        }
        ~BlockScope() {
            p_.block_stack_.pop_back();
            p_.block_lines_.pop_back();
        }
        Parser &p_;
    };

    NodePtr parse_statement() {
        const Token &t = cur();
        if (t.type != TokenType::Name) fail("tag name expected, got ", describe(t));
        const std::string &tag = t.value;
        BlockScope scope(*this, tag, t.pos.line);
        if (tag == "for") return parse_for();
        if (tag == "if") return parse_if();
        if (tag == "set") return parse_set();
        if (tag == "macro") return parse_macro();
        if (tag == "filter") return parse_filter_block();
        if (tag == "with") return parse_with();
        if (tag == "print") {
            auto out = std::make_unique<OutputNode>(next().pos);
            out->items.push_back(parse_tuple(false, true, {}, false));
            return out;
        }
        if (tag == "break" || tag == "continue") {
            if (loop_depth_ == 0) fail("'", tag, "' outside of a for loop");
            return std::make_unique<Node>(tag == "break" ? NodeType::Break : NodeType::Continue, next().pos);
        }
        if (tag == "generation") {
            auto node = std::make_unique<ScopeNode>(next().pos);
            node->body = parse_statements({"endgeneration"}, true);
            return node;
        }
        static const char *const unsupported[] = {"block", "extends", "include", "import", "from", "call", "autoescape", "do"};
        for (const char *u : unsupported)
            if (tag == u) {
                if (tag == "do") fail("encountered unknown tag 'do' (the 'do' extension is not enabled for chat templates)");
                fail("the '", tag, "' tag is not supported in chat templates");
            }
        for (const auto &ends : end_stack_)
            if (std::find(ends.begin(), ends.end(), tag) != ends.end())
                fail("unexpected tag '", tag, "' (the innermost open block is '", block_stack_[block_stack_.size() - 2], "')");
        fail("encountered unknown tag '", tag, "'");
    }

    NodePtr parse_for() {
        auto node = std::make_unique<ForNode>(next().pos);
        node->target = parse_assign_target(true, false, {"in"}, false);
        if (!skip_name("in")) fail("expected 'in' in the for loop, got ", describe(cur()));
        node->iter = parse_tuple(false, false, {"recursive"}, false);
        if (skip_name("if")) node->filter = parse_expression(true);
        if (is_name("recursive")) fail("recursive for loops are not supported");
        ++loop_depth_;
        std::string which;
        node->body = parse_statements({"endfor", "else"}, false, &which);
        --loop_depth_;
        next();  // endfor / else
        if (which == "else") node->else_body = parse_statements({"endfor"}, true);
        return node;
    }

    NodePtr parse_if() {
        auto root = std::make_unique<IfNode>(next().pos);
        IfNode *node = root.get();
        for (;;) {
            node->test = parse_tuple(false, false, {}, false);
            std::string which;
            node->body = parse_statements({"elif", "else", "endif"}, false, &which);
            const Token &t = next();
            if (which == "elif") {
                auto elif = std::make_unique<IfNode>(t.pos);
                IfNode *raw = elif.get();
                node->else_body.push_back(std::move(elif));
                node = raw;
                continue;
            }
            if (which == "else") node->else_body = parse_statements({"endif"}, true);
            break;
        }
        return root;
    }

    NodePtr parse_set() {
        const source_pos pos = next().pos;
        NodePtr target = parse_assign_target(true, false, {}, true);
        if (skip_op("=")) {
            auto node = std::make_unique<AssignNode>(pos);
            node->target = std::move(target);
            node->value = parse_tuple(false, true, {}, false);
            return node;
        }
        auto node = std::make_unique<AssignBlockNode>(pos);
        node->target = std::move(target);
        if (is_op("|")) node->filter = parse_filter(nullptr, false);
        node->body = parse_statements({"endset"}, true);
        return node;
    }

    NodePtr parse_macro() {
        auto node = std::make_unique<MacroNode>(next().pos);
        node->name = expect_name().value;
        expect_op("(");
        while (!is_op(")")) {
            if (!node->params.empty()) expect_op(",");
            node->params.push_back(expect_name().value);
            if (skip_op("="))
                node->defaults.push_back(parse_expression(true));
            else if (!node->defaults.empty())
                fail("non-default argument follows default argument");
        }
        expect_op(")");
        ++macro_depth_;
        const int saved_loop = loop_depth_;
        loop_depth_ = 0;
        node->body = parse_statements({"endmacro"}, true);
        loop_depth_ = saved_loop;
        --macro_depth_;
        return node;
    }

    NodePtr parse_filter_block() {
        auto node = std::make_unique<FilterBlockNode>(next().pos);
        node->filter = parse_filter(nullptr, true);
        node->body = parse_statements({"endfilter"}, true);
        return node;
    }

    NodePtr parse_with() {
        auto node = std::make_unique<WithNode>(next().pos);
        while (cur().type != TokenType::BlockEnd) {
            if (!node->assigns.empty()) expect_op(",");
            NodePtr target = parse_assign_target(true, false, {}, false);
            expect_op("=");
            node->assigns.emplace_back(std::move(target), parse_expression(true));
        }
        node->body = parse_statements({"endwith"}, true);
        return node;
    }

    NodePtr parse_assign_target(bool with_tuple, bool name_only, const std::vector<std::string> &extra_end,
                                bool with_namespace) {
        if (with_namespace && cur().type == TokenType::Name && look().type == TokenType::Operator && look().value == ".") {
            const Token &n = next();
            next();  // '.'
            const Token &a = expect_name();
            return std::make_unique<NSRefNode>(n.pos, n.value, a.value);
        }
        if (name_only) {
            const Token &n = expect_name();
            return std::make_unique<NameNode>(n.pos, n.value);
        }
        const source_pos pos = cur().pos;
        NodePtr target = with_tuple ? parse_tuple(true, true, extra_end, false) : parse_primary();
        check_assignable(target.get(), pos);
        return target;
    }

    void check_assignable(const Node *n, const source_pos &pos) {
        if (n->type == NodeType::Name) return;
        if (n->type == NodeType::List && static_cast<const ListNode *>(n)->tuple) {
            for (const auto &item : static_cast<const ListNode *>(n)->items) check_assignable(item.get(), pos);
            return;
        }
        syntax_error(pos, "cannot assign to this expression");
    }

    // ---- expressions --------------------------------------------------------------------------
    bool is_tuple_end(const std::vector<std::string> &extra_end) const {
        const Token &t = cur();
        if (t.type == TokenType::VarEnd || t.type == TokenType::BlockEnd || t.type == TokenType::Eof) return true;
        if (t.type == TokenType::Operator && t.value == ")") return true;
        if (t.type == TokenType::Name && std::find(extra_end.begin(), extra_end.end(), t.value) != extra_end.end())
            return true;
        return false;
    }

    NodePtr parse_tuple(bool simplified, bool with_condexpr, const std::vector<std::string> &extra_end,
                        bool explicit_parentheses) {
        const source_pos pos = cur().pos;
        NodeList args;
        bool is_tuple = false;
        for (;;) {
            if (!args.empty()) expect_op(",");
            if (is_tuple_end(extra_end)) break;
            args.push_back(simplified ? parse_primary() : parse_expression(with_condexpr));
            if (is_op(","))
                is_tuple = true;
            else
                break;
        }
        if (!is_tuple) {
            if (!args.empty()) return std::move(args[0]);
            if (!explicit_parentheses) fail("expected an expression, got ", describe(cur()));
        }
        auto node = std::make_unique<ListNode>(pos, true);
        node->items = std::move(args);
        return node;
    }

    NodePtr parse_expression(bool with_condexpr) { return with_condexpr ? parse_condexpr() : parse_or(); }

    NodePtr parse_condexpr() {
        const source_pos pos = cur().pos;
        NodePtr expr1 = parse_or();
        while (skip_name("if")) {
            auto node = std::make_unique<CondExprNode>(pos);
            node->test = parse_or();
            if (skip_name("else")) node->else_expr = parse_condexpr();
            node->then_expr = std::move(expr1);
            expr1 = std::move(node);
        }
        return expr1;
    }

    NodePtr parse_or() {
        NodePtr left = parse_and();
        while (is_name("or")) {
            const source_pos pos = next().pos;
            left = std::make_unique<BinaryNode>(pos, "or", std::move(left), parse_and());
        }
        return left;
    }

    NodePtr parse_and() {
        NodePtr left = parse_not();
        while (is_name("and")) {
            const source_pos pos = next().pos;
            left = std::make_unique<BinaryNode>(pos, "and", std::move(left), parse_not());
        }
        return left;
    }

    NodePtr parse_not() {
        if (is_name("not")) {
            DepthGuard guard(*this);
            const source_pos pos = next().pos;
            return std::make_unique<UnaryNode>(pos, "not", parse_not());
        }
        return parse_compare();
    }

    NodePtr parse_compare() {
        const source_pos pos = cur().pos;
        NodePtr first = parse_math1();
        std::unique_ptr<CompareNode> node;
        for (;;) {
            std::string op;
            const Token &t = cur();
            if (t.type == TokenType::Operator &&
                (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == "<=" || t.value == ">" || t.value == ">=")) {
                op = t.value;
                next();
            } else if (is_name("in")) {
                op = "in";
                next();
            } else if (is_name("not") && look().type == TokenType::Name && look().value == "in") {
                op = "notin";
                next();
                next();
            } else {
                break;
            }
            if (!node) node = std::make_unique<CompareNode>(pos, std::move(first));
            node->ops.emplace_back(op, parse_math1());
        }
        if (node) return node;
        return first;
    }

    NodePtr parse_math1() {
        NodePtr left = parse_concat();
        while (is_op("+") || is_op("-")) {
            const Token &t = next();
            left = std::make_unique<BinaryNode>(t.pos, t.value, std::move(left), parse_concat());
        }
        return left;
    }

    NodePtr parse_concat() {
        const source_pos pos = cur().pos;
        NodePtr first = parse_math2();
        if (!is_op("~")) return first;
        auto node = std::make_unique<ConcatNode>(pos);
        node->parts.push_back(std::move(first));
        while (skip_op("~")) node->parts.push_back(parse_math2());
        return node;
    }

    NodePtr parse_math2() {
        NodePtr left = parse_pow();
        while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
            const Token &t = next();
            left = std::make_unique<BinaryNode>(t.pos, t.value, std::move(left), parse_pow());
        }
        return left;
    }

    NodePtr parse_pow() {
        NodePtr left = parse_unary(true);
        while (is_op("**")) {
            const Token &t = next();
            left = std::make_unique<BinaryNode>(t.pos, "**", std::move(left), parse_unary(true));
        }
        return left;
    }

    NodePtr parse_unary(bool with_filter) {
        DepthGuard guard(*this);
        NodePtr node;
        if (is_op("-") || is_op("+")) {
            const Token &t = next();
            node = std::make_unique<UnaryNode>(t.pos, t.value, parse_unary(false));
        } else {
            node = parse_primary();
        }
        node = parse_postfix(std::move(node));
        if (with_filter) node = parse_filter_expr(std::move(node));
        return node;
    }

    NodePtr parse_primary() {
        DepthGuard guard(*this);
        const Token &t = cur();
        switch (t.type) {
            case TokenType::Name: {
                next();
                if (t.value == "true" || t.value == "True") return std::make_unique<ConstNode>(t.pos, Value::boolean(true));
                if (t.value == "false" || t.value == "False")
                    return std::make_unique<ConstNode>(t.pos, Value::boolean(false));
                if (t.value == "none" || t.value == "None") return std::make_unique<ConstNode>(t.pos, Value::none());
                return std::make_unique<NameNode>(t.pos, t.value);
            }
            case TokenType::String: {
                const source_pos pos = t.pos;
                std::string s;
                while (cur().type == TokenType::String) s += next().value;
                return std::make_unique<ConstNode>(pos, Value::string(std::move(s)));
            }
            case TokenType::Integer: next(); return std::make_unique<ConstNode>(t.pos, Value::integer(t.int_value));
            case TokenType::Float: next(); return std::make_unique<ConstNode>(t.pos, Value::number(t.float_value));
            case TokenType::Operator:
                if (t.value == "(") {
                    next();
                    NodePtr node = parse_tuple(false, true, {}, true);
                    expect_op(")");
                    return node;
                }
                if (t.value == "[") return parse_list();
                if (t.value == "{") return parse_dict();
                break;
            case TokenType::Eof: fail_eof();
            default: break;
        }
        fail("unexpected ", describe(t));
    }

    NodePtr parse_list() {
        auto node = std::make_unique<ListNode>(next().pos, false);
        while (!is_op("]")) {
            if (!node->items.empty()) expect_op(",");
            if (is_op("]")) break;
            node->items.push_back(parse_expression(true));
        }
        expect_op("]");
        return node;
    }

    NodePtr parse_dict() {
        auto node = std::make_unique<DictNode>(next().pos);
        while (!is_op("}")) {
            if (!node->items.empty()) expect_op(",");
            if (is_op("}")) break;
            NodePtr key = parse_expression(true);
            expect_op(":");
            node->items.emplace_back(std::move(key), parse_expression(true));
        }
        expect_op("}");
        return node;
    }

    NodePtr parse_postfix(NodePtr node) {
        for (;;) {
            if (is_op(".") || is_op("["))
                node = parse_subscript(std::move(node));
            else if (is_op("("))
                node = parse_call(std::move(node));
            else
                return node;
        }
    }

    NodePtr parse_filter_expr(NodePtr node) {
        for (;;) {
            if (is_op("|"))
                node = parse_filter(std::move(node), false);
            else if (is_name("is"))
                node = parse_test(std::move(node));
            else if (is_op("("))
                node = parse_call(std::move(node));
            else
                return node;
        }
    }

    NodePtr parse_subscript(NodePtr node) {
        const Token &t = next();
        if (t.value == ".") {
            const Token &attr = next();
            if (attr.type == TokenType::Name) return std::make_unique<GetattrNode>(t.pos, std::move(node), attr.value);
            if (attr.type != TokenType::Integer) syntax_error(attr.pos, "expected a name or number after '.'");
            return std::make_unique<GetitemNode>(t.pos, std::move(node),
                                                 std::make_unique<ConstNode>(attr.pos, Value::integer(attr.int_value)));
        }
        NodeList args;
        const source_pos pos = cur().pos;
        while (!is_op("]")) {
            if (!args.empty()) expect_op(",");
            args.push_back(parse_subscribed());
        }
        expect_op("]");
        if (args.size() == 1) return std::make_unique<GetitemNode>(t.pos, std::move(node), std::move(args[0]));
        auto tuple = std::make_unique<ListNode>(pos, true);
        tuple->items = std::move(args);
        return std::make_unique<GetitemNode>(t.pos, std::move(node), std::move(tuple));
    }

    NodePtr parse_subscribed() {
        const source_pos pos = cur().pos;
        NodePtr start;
        if (is_op(":")) {
            next();
        } else {
            NodePtr expr = parse_expression(true);
            if (!is_op(":")) return expr;
            next();
            start = std::move(expr);
        }
        auto slice = std::make_unique<SliceNode>(pos);
        slice->start = std::move(start);
        if (!is_op(":") && !is_op("]") && !is_op(",")) slice->stop = parse_expression(true);
        if (skip_op(":")) {
            if (!is_op("]") && !is_op(",")) slice->step = parse_expression(true);
        }
        return slice;
    }

    void parse_call_args(NodeList &args, KwArgs &kwargs) {
        expect_op("(");
        bool require_comma = false;
        while (!is_op(")")) {
            if (require_comma) {
                expect_op(",");
                if (is_op(")")) break;
            }
            if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
            if (cur().type == TokenType::Name && look().type == TokenType::Operator && look().value == "=") {
                std::string key = next().value;
                next();
                kwargs.emplace_back(std::move(key), parse_expression(true));
            } else {
                if (!kwargs.empty()) fail("positional argument follows keyword argument");
                args.push_back(parse_expression(true));
            }
            require_comma = true;
        }
        expect_op(")");
    }

    NodePtr parse_call(NodePtr node) {
        auto call = std::make_unique<CallNode>(cur().pos, std::move(node));
        parse_call_args(call->args, call->kwargs);
        return call;
    }

    std::string dotted_name() {
        std::string name = expect_name().value;
        while (is_op(".")) {
            next();
            name += "." + expect_name().value;
        }
        return name;
    }

    NodePtr parse_filter(NodePtr node, bool start_inline) {
        while (is_op("|") || start_inline) {
            if (!start_inline) next();
            start_inline = false;
            const source_pos pos = cur().pos;
            std::string name = dotted_name();  // checked by check_names() once the tree is built
            auto f = std::make_unique<FilterNode>(pos, std::move(node), std::move(name));
            if (is_op("(")) parse_call_args(f->args, f->kwargs);
            node = std::move(f);
        }
        return node;
    }

    NodePtr parse_test(NodePtr node) {
        next();  // 'is'
        const bool negated = skip_name("not");
        const source_pos pos = cur().pos;
        std::string name = dotted_name();  // checked by check_names() once the tree is built
        auto t = std::make_unique<TestNode>(pos, std::move(node), std::move(name));
        const Token &c = cur();
        if (is_op("(")) {
            parse_call_args(t->args, t->kwargs);
        } else if ((c.type == TokenType::Name || c.type == TokenType::String || c.type == TokenType::Integer ||
                    c.type == TokenType::Float || (c.type == TokenType::Operator && (c.value == "[" || c.value == "{"))) &&
                   !(c.type == TokenType::Name && (c.value == "else" || c.value == "or" || c.value == "and"))) {
            if (is_name("is")) fail("you cannot chain multiple tests with 'is'");
            t->args.push_back(parse_postfix(parse_primary()));
        }
        if (!negated) return t;
        return std::make_unique<UnaryNode>(pos, "not", std::move(t));
    }

    std::vector<Token> toks_;
    size_t i_ = 0;
    int depth_ = 0;
    int loop_depth_ = 0;
    int macro_depth_ = 0;
    std::vector<std::vector<std::string>> end_stack_;
    std::vector<std::string> block_stack_;
    std::vector<int> block_lines_;
};

// Jinja checks filter and test names when it compiles the template, except inside an if
// statement or an inline if-expression (a "soft frame", CodeGenerator._filter_test_common): there
// an unknown name fails only if it is reached at run time. Loop, macro, set-block, filter-block and
// with bodies open ordinary frames again.
class NameChecker {
public:
    void body(const NodeList &nodes, bool soft) {
        for (const auto &n : nodes) stmt(*n, soft);
    }

private:
    void check(const std::string &name, bool is_filter, const source_pos &pos, bool soft) {
        if (soft) return;
        const Availability a = is_filter ? filter_availability(name) : test_availability(name);
        const char *what = is_filter ? "filter" : "test";
        if (a == Availability::Unknown) syntax_error(pos, "no ", what, " named '", name, "'");
        if (a == Availability::Unsupported) syntax_error(pos, "the ", what, " '", name, "' is not supported in chat templates");
    }

    void expr(const Node *n, bool soft) {
        if (!n) return;
        switch (n->type) {
            case NodeType::List:
                for (const auto &i : static_cast<const ListNode *>(n)->items) expr(i.get(), soft);
                return;
            case NodeType::Dict:
                for (const auto &kv : static_cast<const DictNode *>(n)->items) {
                    expr(kv.first.get(), soft);
                    expr(kv.second.get(), soft);
                }
                return;
            case NodeType::Getattr: expr(static_cast<const GetattrNode *>(n)->obj.get(), soft); return;
            case NodeType::Getitem:
                expr(static_cast<const GetitemNode *>(n)->obj.get(), soft);
                expr(static_cast<const GetitemNode *>(n)->index.get(), soft);
                return;
            case NodeType::Slice: {
                const auto *s = static_cast<const SliceNode *>(n);
                expr(s->start.get(), soft);
                expr(s->stop.get(), soft);
                expr(s->step.get(), soft);
                return;
            }
            case NodeType::Call: {
                const auto *c = static_cast<const CallNode *>(n);
                expr(c->callee.get(), soft);
                for (const auto &a : c->args) expr(a.get(), soft);
                for (const auto &kw : c->kwargs) expr(kw.second.get(), soft);
                return;
            }
            case NodeType::Filter: {
                const auto *f = static_cast<const FilterNode *>(n);
                check(f->name, true, f->pos, soft);
                expr(f->operand.get(), soft);
                for (const auto &a : f->args) expr(a.get(), soft);
                for (const auto &kw : f->kwargs) expr(kw.second.get(), soft);
                return;
            }
            case NodeType::Test: {
                const auto *t = static_cast<const TestNode *>(n);
                check(t->name, false, t->pos, soft);
                expr(t->operand.get(), soft);
                for (const auto &a : t->args) expr(a.get(), soft);
                for (const auto &kw : t->kwargs) expr(kw.second.get(), soft);
                return;
            }
            case NodeType::Unary: expr(static_cast<const UnaryNode *>(n)->operand.get(), soft); return;
            case NodeType::Binary:
                expr(static_cast<const BinaryNode *>(n)->left.get(), soft);
                expr(static_cast<const BinaryNode *>(n)->right.get(), soft);
                return;
            case NodeType::Concat:
                for (const auto &p : static_cast<const ConcatNode *>(n)->parts) expr(p.get(), soft);
                return;
            case NodeType::Compare: {
                const auto *c = static_cast<const CompareNode *>(n);
                expr(c->first.get(), soft);
                for (const auto &op : c->ops) expr(op.second.get(), soft);
                return;
            }
            case NodeType::CondExpr: {
                const auto *c = static_cast<const CondExprNode *>(n);
                expr(c->test.get(), true);
                expr(c->then_expr.get(), true);
                expr(c->else_expr.get(), true);
                return;
            }
            default: return;
        }
    }

    void stmt(const Node &n, bool soft) {
        switch (n.type) {
            case NodeType::Output:
                for (const auto &i : static_cast<const OutputNode &>(n).items) expr(i.get(), soft);
                return;
            case NodeType::If: {
                const auto &i = static_cast<const IfNode &>(n);
                expr(i.test.get(), true);
                body(i.body, true);
                body(i.else_body, true);
                return;
            }
            case NodeType::For: {
                const auto &f = static_cast<const ForNode &>(n);
                expr(f.iter.get(), soft);
                expr(f.filter.get(), false);
                body(f.body, false);
                body(f.else_body, false);
                return;
            }
            case NodeType::Assign: expr(static_cast<const AssignNode &>(n).value.get(), soft); return;
            case NodeType::AssignBlock: {
                const auto &a = static_cast<const AssignBlockNode &>(n);
                expr(a.filter.get(), false);
                body(a.body, false);
                return;
            }
            case NodeType::Macro: {
                const auto &m = static_cast<const MacroNode &>(n);
                for (const auto &d : m.defaults) expr(d.get(), false);
                body(m.body, false);
                return;
            }
            case NodeType::FilterBlock: {
                const auto &f = static_cast<const FilterBlockNode &>(n);
                expr(f.filter.get(), false);
                body(f.body, false);
                return;
            }
            case NodeType::With: {
                const auto &w = static_cast<const WithNode &>(n);
                for (const auto &a : w.assigns) expr(a.second.get(), soft);
                body(w.body, false);
                return;
            }
            case NodeType::Scope: body(static_cast<const ScopeNode &>(n).body, false); return;
            default: return;
        }
    }
};

}  // namespace

std::shared_ptr<Program> parse_template(const std::string &source) {
    std::shared_ptr<Program> program = Parser(tokenize(source)).run();
    NameChecker().body(program->body, false);
    return program;
}

}  // namespace eurollm::chat::jinja
