"""An import-linter contract type (`.importlinter`: contract_types): the source
modules name no area. Imports are the forbidden contract's job; this one reads each
module's identifiers and string literals (comments and docstrings may explain who
uses a thing) and refuses any that contains one of `words` as a word of its own
(split at underscores, punctuation and camelCase: `vipay` is not `vip`).
`allow`: exact identifiers or literals that keep an area word, each with its reason
in .importlinter."""

from __future__ import annotations

import ast
import importlib.util
import io
import re
import tokenize

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")


def words_of(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _docstring_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.add(first.lineno)
    return lines


def area_words_in(source: str, words: set[str], allow: set[str]) -> list[tuple[int, str, str]]:
    """(line, token, word) for each identifier or string literal naming an area."""
    docstrings = _docstring_lines(ast.parse(source))
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.NAME:
            text = tok.string
        elif tok.type == tokenize.STRING and tok.start[0] not in docstrings:
            text = tok.string.lstrip("rbufRBUF").strip("\"'")  # as written (f-strings too)
        else:
            continue
        if text in allow:
            continue
        for word in sorted(words_of(text) & words):
            found.append((tok.start[0], text, word))
    return found


class AreaWordsContract(Contract):
    type_name = "area_words"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    words = fields.ListField(subfield=fields.StringField())
    allow = fields.ListField(subfield=fields.StringField(), required=False, default=[])

    def check(self, graph, verbose: bool) -> ContractCheck:
        words = {w.lower() for w in self.words}
        allow = set(self.allow)
        names = sorted(m for source in self.source_modules
                       for m in {source.name} | graph.find_descendants(source.name))
        violations = []
        for name in names:
            spec = importlib.util.find_spec(name)
            if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                continue
            with open(spec.origin, encoding="utf-8") as f:
                found = area_words_in(f.read(), words, allow)
            violations += [(name, line, text, word) for line, text, word in found]
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for name, line, text, word in check.metadata["violations"]:
            output.print_error(f"{name}:{line} names the area word {word!r}: {text[:80]!r}", bold=False)
            output.new_line()
