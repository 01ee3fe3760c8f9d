"""The type stubs (eurollm/_eurollm.pyi) describe what the extension module really exports."""

import ast
from pathlib import Path

import eurollm
from eurollm import _eurollm

STUB = Path(eurollm.__file__).with_name("_eurollm.pyi")


def _stub_tree():
    return ast.parse(STUB.read_text())


def _public(names):
    return {n for n in names if not n.startswith("_")}


def test_stub_lists_every_module_name_and_no_more():
    tree = _stub_tree()
    stubbed = set()
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            stubbed.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            stubbed.add(node.target.id)
    exported = _public(dir(_eurollm)) - {"annotations"}
    assert _public(stubbed) == exported


def test_stub_classes_list_every_member():
    tree = _stub_tree()
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or node.name.startswith("_"):
            continue
        cls = getattr(_eurollm, node.name)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            continue
        stubbed = set()
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                stubbed.add(item.name)
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                stubbed.add(item.target.id)
            elif isinstance(item, ast.Assign):
                stubbed.update(t.id for t in item.targets if isinstance(t, ast.Name))
        members = _public(vars(cls)) if not hasattr(cls, "__members__") else set(cls.__members__)
        base = {b.id for b in node.bases if isinstance(b, ast.Name)}
        if "_Params" in base:
            stubbed |= {"copy", "to_dict"}
        assert members <= stubbed, (node.name, members - stubbed)


def test_package_exports():
    for name in eurollm.__all__:
        assert hasattr(eurollm, name), name
    assert issubclass(eurollm.Model, _eurollm.Model)
    assert issubclass(eurollm.Context, _eurollm.Context)
    assert issubclass(eurollm.Generator, _eurollm.Generator)
