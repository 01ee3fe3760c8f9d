// Compile-time constant folding, as Jinja2's compiler does it (jinja2/optimizer.py and
// CodeGenerator._output_child_to_const). It is part of the semantics, not only a speed-up: a
// folded expression is evaluated with Expr.as_const, where a subscript goes through
// environment.getitem (a failing slice gives Undefined), whereas at run time a slice is a plain
// Python subscript (a failing slice is an error). So `{{ (2)[1:] }}` renders '' but
// `{{ x[1:] }}` with x = 2 fails, in Jinja2 and here.
//
// Rules reproduced: a {{ }} expression that folds as a whole is replaced by its value (whatever
// it is); elsewhere every sub-expression whose folded value Python can represent as a literal
// (None, bool, int, float, str, range, and lists, tuples and dicts of those) is replaced by it.
// Names and calls never fold; `and`/`or` and `a if t else b` fold when the branch taken does.
#pragma once

#include "chat/jinja_ast.h"

namespace eurollm::chat::jinja {

void optimize(Program &program);

}  // namespace eurollm::chat::jinja
