// Syntax tree of a compiled template. Expressions and statements are nodes tagged with their
// type and source position; the interpreter (jinja_eval) walks them.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "chat/jinja_error.h"
#include "chat/jinja_value.h"

namespace eurollm::chat::jinja {

enum class NodeType {
    // expressions
    Const,
    Name,
    List,  // list or tuple literal
    Dict,
    Getattr,
    Getitem,
    Slice,
    Call,
    Filter,
    Test,
    Unary,
    Binary,
    Concat,
    Compare,
    CondExpr,
    NSRef,  // assignment target ns.attr
    // statements
    Data,
    Output,
    For,
    If,
    Assign,
    AssignBlock,
    Macro,
    FilterBlock,
    With,
    Break,
    Continue,
    Scope,  // a body with no effect of its own ({% generation %})
};

struct Node {
    explicit Node(NodeType t, source_pos p) : type(t), pos(p) {}
    virtual ~Node() = default;
    NodeType type;
    source_pos pos;
};
using NodePtr = std::unique_ptr<Node>;
using NodeList = std::vector<NodePtr>;
using KwArgs = std::vector<std::pair<std::string, NodePtr>>;

struct ConstNode : Node {
    ConstNode(source_pos p, Value v) : Node(NodeType::Const, p), value(std::move(v)) {}
    Value value;
};

struct NameNode : Node {
    NameNode(source_pos p, std::string n) : Node(NodeType::Name, p), name(std::move(n)) {}
    std::string name;
};

struct ListNode : Node {
    ListNode(source_pos p, bool t) : Node(NodeType::List, p), tuple(t) {}
    NodeList items;
    bool tuple;
};

struct DictNode : Node {
    explicit DictNode(source_pos p) : Node(NodeType::Dict, p) {}
    std::vector<std::pair<NodePtr, NodePtr>> items;
};

struct GetattrNode : Node {
    GetattrNode(source_pos p, NodePtr o, std::string a) : Node(NodeType::Getattr, p), obj(std::move(o)), attr(std::move(a)) {}
    NodePtr obj;
    std::string attr;
};

struct GetitemNode : Node {
    GetitemNode(source_pos p, NodePtr o, NodePtr i) : Node(NodeType::Getitem, p), obj(std::move(o)), index(std::move(i)) {}
    NodePtr obj;
    NodePtr index;
};

struct SliceNode : Node {
    explicit SliceNode(source_pos p) : Node(NodeType::Slice, p) {}
    NodePtr start, stop, step;  // each may be null
};

struct CallNode : Node {
    CallNode(source_pos p, NodePtr c) : Node(NodeType::Call, p), callee(std::move(c)) {}
    NodePtr callee;
    NodeList args;
    KwArgs kwargs;
};

// `operand | name(args)`. In filter blocks and {% set x | f %} the innermost operand is null
// and stands for the rendered body.
struct FilterNode : Node {
    FilterNode(source_pos p, NodePtr o, std::string n) : Node(NodeType::Filter, p), operand(std::move(o)), name(std::move(n)) {}
    NodePtr operand;
    std::string name;
    NodeList args;
    KwArgs kwargs;
};

struct TestNode : Node {
    TestNode(source_pos p, NodePtr o, std::string n) : Node(NodeType::Test, p), operand(std::move(o)), name(std::move(n)) {}
    NodePtr operand;
    std::string name;
    NodeList args;
    KwArgs kwargs;
};

struct UnaryNode : Node {
    UnaryNode(source_pos p, std::string o, NodePtr e) : Node(NodeType::Unary, p), op(std::move(o)), operand(std::move(e)) {}
    std::string op;  // "-", "+", "not"
    NodePtr operand;
};

struct BinaryNode : Node {
    BinaryNode(source_pos p, std::string o, NodePtr l, NodePtr r)
        : Node(NodeType::Binary, p), op(std::move(o)), left(std::move(l)), right(std::move(r)) {}
    std::string op;  // + - * / // % ** and or
    NodePtr left, right;
};

struct ConcatNode : Node {
    explicit ConcatNode(source_pos p) : Node(NodeType::Concat, p) {}
    NodeList parts;
};

struct CompareNode : Node {
    CompareNode(source_pos p, NodePtr f) : Node(NodeType::Compare, p), first(std::move(f)) {}
    NodePtr first;
    std::vector<std::pair<std::string, NodePtr>> ops;  // == != < <= > >= in notin
};

struct CondExprNode : Node {
    explicit CondExprNode(source_pos p) : Node(NodeType::CondExpr, p) {}
    NodePtr test, then_expr, else_expr;  // else_expr may be null
};

struct NSRefNode : Node {
    NSRefNode(source_pos p, std::string n, std::string a) : Node(NodeType::NSRef, p), name(std::move(n)), attr(std::move(a)) {}
    std::string name, attr;
};

struct DataNode : Node {
    DataNode(source_pos p, std::string t) : Node(NodeType::Data, p), text(std::move(t)) {}
    std::string text;
};

struct OutputNode : Node {
    explicit OutputNode(source_pos p) : Node(NodeType::Output, p) {}
    NodeList items;  // DataNode or expressions
};

struct ForNode : Node {
    explicit ForNode(source_pos p) : Node(NodeType::For, p) {}
    NodePtr target, iter, filter;  // filter may be null
    NodeList body, else_body;
};

struct IfNode : Node {
    explicit IfNode(source_pos p) : Node(NodeType::If, p) {}
    NodePtr test;
    NodeList body, else_body;  // elif is a nested IfNode in else_body
};

struct AssignNode : Node {
    explicit AssignNode(source_pos p) : Node(NodeType::Assign, p) {}
    NodePtr target, value;
};

struct AssignBlockNode : Node {
    explicit AssignBlockNode(source_pos p) : Node(NodeType::AssignBlock, p) {}
    NodePtr target;
    NodePtr filter;  // may be null
    NodeList body;
};

struct MacroNode : Node {
    explicit MacroNode(source_pos p) : Node(NodeType::Macro, p) {}
    std::string name;
    std::vector<std::string> params;
    std::vector<NodePtr> defaults;  // aligned to the last params
    NodeList body;
};

struct FilterBlockNode : Node {
    explicit FilterBlockNode(source_pos p) : Node(NodeType::FilterBlock, p) {}
    NodePtr filter;
    NodeList body;
};

struct WithNode : Node {
    explicit WithNode(source_pos p) : Node(NodeType::With, p) {}
    std::vector<std::pair<NodePtr, NodePtr>> assigns;  // target, value
    NodeList body;
};

struct ScopeNode : Node {
    explicit ScopeNode(source_pos p) : Node(NodeType::Scope, p) {}
    NodeList body;
};

struct Program {
    NodeList body;
};

}  // namespace eurollm::chat::jinja
