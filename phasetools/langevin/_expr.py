"""Expressions from text without evaluating it: a whitelist parser for sympy expressions.

``sympy.sympify`` and ``sympy.parsing.sympy_parser.parse_expr`` run Python ``eval`` on
their input, so a string from a results file (or pasted by a user) could run any code.
:func:`parse_expression` instead parses the text with :func:`ast.parse` (which never
executes anything) and rebuilds the expression node by node from a whitelist:

* Python arithmetic: ``+ - * / **`` (and ``^`` read as ``**``, as sympify does), unary
  ``-``/``+``, int and float literals, names, and calls of the functions in
  :data:`FUNCTIONS` (the text ``str(expr)`` prints, e.g. ``x**4/4 - x**2/2``);
* sympy's ``srepr`` trees: ``Symbol('x', real=True)``, ``Integer(4)``,
  ``Rational(1, 4)``, ``Float('0.5', precision=53)``, ``Add(...)``, ``Mul(...)``,
  ``Pow(...)`` and the same functions (the exact form :func:`order_text` stores).

Anything else (attributes, subscripts, lambdas, comprehensions, strings outside the
constructors above, keyword arguments other than symbol assumptions and ``precision``)
is refused with a ValueError. Names resolve to the symbols given by the caller; unknown
names become new symbols only where the caller allows it (a user's expression), never in
a stored stop condition.
"""

from __future__ import annotations

import ast
import io
import operator
import tokenize

import sympy as sp

__all__ = ["parse_expression", "order_text", "as_expression", "FUNCTIONS"]

#: Functions an expression may call (sympy's names; ``abs`` is ``Abs``).
FUNCTIONS = {name: getattr(sp, name) for name in (
    "exp", "log", "sqrt", "Abs", "sign", "Max", "Min", "Heaviside", "sin", "cos", "tan", "sinh", "cosh",
    "tanh", "asin", "acos", "atan", "atan2", "asinh", "acosh", "atanh", "erf", "erfc", "cbrt", "floor",
    "ceiling")} | {"abs": sp.Abs}
_CONSTANTS = {"pi": sp.pi, "E": sp.E, "oo": sp.oo}
_ASSUMPTIONS = frozenset({"real", "positive", "negative", "nonnegative", "nonpositive", "integer", "finite",
                          "commutative", "extended_real", "zero", "nonzero"})
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Pow: operator.pow}
_MAX_CHARS = 2_000_000
_MAX_EXPONENT = 4096  # a numeric power above this would make sympy compute a huge integer


class _Builder:
    """Rebuilds a whitelisted Python AST into a sympy expression."""

    def __init__(self, text, symbols, new_symbols, what):
        self.text, self.symbols, self.new_symbols, self.what = text, symbols, new_symbols, what
        self.lines = [line.encode() for line in text.splitlines(keepends=True)]

    def segment(self, node):
        """The source text of a one-line node (``ast.get_source_segment`` re-splits the
        whole text on every call: quadratic in long expressions)."""
        if getattr(node, "end_lineno", None) != getattr(node, "lineno", -1):
            return None
        return self.lines[node.lineno - 1][node.col_offset:node.end_col_offset].decode()

    def refuse(self, node, why):
        snippet = ast.get_source_segment(self.text, node) or type(node).__name__
        if len(snippet) > 60:
            snippet = snippet[:57] + "..."
        raise ValueError(f"{self.what}: {why} ({snippet!r}); only arithmetic, numbers, the symbols of the "
                         f"potential and the functions {', '.join(sorted(FUNCTIONS))} are allowed")

    def build(self, node):
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            value = self.build(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return self.number(node)
        if isinstance(node, ast.Name):
            return self.name(node.id, node)
        if isinstance(node, ast.Call):
            return self.call(node)
        self.refuse(node, f"{type(node).__name__} is not allowed")

    def binop(self, node):
        """A chain ``a + b - c ...`` iteratively (long sums nest as deep as they are long)."""
        chain = []
        while isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            chain.append(node)
            node = node.left
        if chain:
            value = self.build(node)
            for link in reversed(chain):
                value = _BINARY[type(link.op)](value, self.build(link.right))
            return value
        if type(node.op) not in _BINARY:
            self.refuse(node, f"the operator {type(node.op).__name__} is not allowed")
        return self.power(node, self.build(node.left), self.build(node.right))

    def power(self, node, base, exponent):
        if base.is_number and exponent.is_number and abs(exponent) > _MAX_EXPONENT:
            self.refuse(node, f"a numeric power with an exponent above {_MAX_EXPONENT} is not allowed")
        return sp.Pow(base, exponent)

    def number(self, node):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.refuse(node, f"the literal {type(value).__name__} is not allowed")
        if isinstance(value, int):
            return sp.Integer(value)
        segment = self.segment(node)  # as sympify: Float of the literal's digits
        return sp.Float(segment.replace("_", "")) if segment else sp.Float(value)

    def name(self, name, node):
        if name in self.symbols:
            return self.symbols[name]
        if name in _CONSTANTS:
            return _CONSTANTS[name]
        if self.new_symbols and name not in FUNCTIONS:
            return sp.Symbol(name)
        self.refuse(node, f"unknown name {name!r}")

    def call(self, node):
        func = node.func.id if isinstance(node.func, ast.Name) else None
        if func is None:
            self.refuse(node, "only calls of a plain function name are allowed")
        if any(isinstance(a, ast.Starred) for a in node.args):
            self.refuse(node, "starred arguments are not allowed")
        constructor = {"Symbol": self.symbol, "Integer": self.integer, "Rational": self.rational,
                       "Float": self.float_, "Add": self.add, "Mul": self.mul, "Pow": self.pow_}.get(func)
        if constructor is not None:
            return constructor(node)
        if func not in FUNCTIONS:
            self.refuse(node, f"the function {func!r} is not allowed")
        if node.keywords:
            self.refuse(node, "keyword arguments are not allowed here")
        return FUNCTIONS[func](*[self.build(a) for a in node.args])

    # -- srepr constructors ------------------------------------------------------------
    def literal(self, node, kind):
        """A literal argument (str or int, with an optional unary minus on an int)."""
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and kind is int:
            sign, node = -1, node.operand
        if not (isinstance(node, ast.Constant) and type(node.value) is kind):
            self.refuse(node, f"expected a {kind.__name__} literal")
        return sign * node.value if kind is int else node.value

    def arity(self, node, n):
        if len(node.args) != n:
            self.refuse(node, f"{node.func.id} takes {n} argument(s)")

    def symbol(self, node):
        self.arity(node, 1)
        name = self.literal(node.args[0], str)
        assumptions = {}
        for kw in node.keywords:
            if kw.arg not in _ASSUMPTIONS or not (isinstance(kw.value, ast.Constant)
                                                  and isinstance(kw.value.value, bool)):
                self.refuse(node, f"the symbol assumption {kw.arg!r} is not allowed")
            assumptions[kw.arg] = kw.value.value
        if name in self.symbols:
            return self.symbols[name]
        if self.new_symbols and name.isidentifier():
            return sp.Symbol(name, **assumptions)
        self.refuse(node, f"unknown symbol {name!r}")

    def integer(self, node):
        self.arity(node, 1)
        if node.keywords:
            self.refuse(node, "Integer takes no keyword arguments")
        return sp.Integer(self.literal(node.args[0], int))

    def rational(self, node):
        self.arity(node, 2)
        if node.keywords:
            self.refuse(node, "Rational takes no keyword arguments")
        p, q = (self.literal(a, int) for a in node.args)
        if q == 0:
            self.refuse(node, "a zero denominator is not allowed")
        return sp.Rational(p, q)

    def float_(self, node):
        self.arity(node, 1)
        digits = self.literal(node.args[0], str)
        if len(digits) > 400 or not all(ch in "0123456789.eE+-" for ch in digits):
            self.refuse(node, "a Float takes a decimal number as text")
        options = {}
        for kw in node.keywords:
            if kw.arg != "precision":
                self.refuse(node, f"Float takes only precision=, got {kw.arg!r}")
            options["precision"] = self.literal(kw.value, int)
            if not 1 <= options["precision"] <= 1024:
                self.refuse(node, "precision must be in 1..1024")
        try:
            return sp.Float(digits, **options)
        except (ValueError, TypeError):
            self.refuse(node, "a Float takes a decimal number as text")

    def add(self, node):
        self.no_keywords(node)
        return sp.Add(*[self.build(a) for a in node.args])

    def mul(self, node):
        self.no_keywords(node)
        return sp.Mul(*[self.build(a) for a in node.args])

    def pow_(self, node):
        self.arity(node, 2)
        self.no_keywords(node)
        return self.power(node, self.build(node.args[0]), self.build(node.args[1]))

    def no_keywords(self, node):
        if node.keywords:
            self.refuse(node, f"{node.func.id} takes no keyword arguments")


def _xor_as_power(text):
    """``^`` as ``**`` (as sympify reads it), replaced token by token before parsing so that
    it gets the precedence of a power, not of Python's exclusive or."""
    if "^" not in text:
        return text
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    return tokenize.untokenize((tok.type, "**" if tok.type == tokenize.OP and tok.string == "^" else tok.string)
                               for tok in tokens)


def parse_expression(text, symbols=(), *, new_symbols=False, what="expression"):
    """A sympy expression from ``text``, parsed without evaluating any code.

    Parameters
    ----------
    text : str
        Python-style arithmetic (``"x**4/4 - x**2/2"``) or sympy ``srepr`` text.
    symbols : iterable of sympy.Symbol
        The symbols names may refer to (matched by name).
    new_symbols : bool, default False
        Turn unknown names into new (plain) symbols, as ``sympify`` does; otherwise an
        unknown name is refused.
    what : str
        What the text is, for error messages (e.g. ``"stop_order"``).

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ValueError
        When the text is not such an expression (names the offending part).
    """
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a string, got {type(text).__name__}")
    if len(text) > _MAX_CHARS:
        raise ValueError(f"{what} is longer than {_MAX_CHARS} characters")
    try:
        text = _xor_as_power(text.strip())
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError, tokenize.TokenError) as exc:
        raise ValueError(f"{what} is not an expression: {exc}") from None
    builder = _Builder(text, {str(s): s for s in symbols}, new_symbols, what)
    try:
        return sp.sympify(builder.build(tree.body), strict=True)
    except RecursionError:
        raise ValueError(f"{what} is nested too deeply") from None
    except (TypeError, sp.SympifyError) as exc:
        raise ValueError(f"{what} is not a valid expression: {exc}") from None


def as_expression(value, symbols=(), *, new_symbols=True, what="expression"):
    """``value`` as a sympy expression: text is parsed safely, numbers and sympy objects kept.

    Parameters
    ----------
    value : str, number or sympy object
        The expression.
    symbols : iterable of sympy.Symbol
        Symbols names in text may refer to.
    new_symbols : bool, default True
        Unknown names in text become new symbols.
    what : str
        The parameter's name, for error messages.

    Returns
    -------
    sympy.Basic
    """
    if isinstance(value, str):
        return parse_expression(value, symbols, new_symbols=new_symbols, what=what)
    try:
        return sp.sympify(value, strict=True)  # strict: never falls back to parsing str(value)
    except sp.SympifyError:
        raise ValueError(f"{what} must be a sympy expression, a number or text, got {type(value).__name__}") from None


def order_text(expr) -> str:
    """The stored text of an order parameter: sympy's ``srepr`` (exact, parsed back safely).

    Parameters
    ----------
    expr : sympy.Expr
        The order parameter.

    Returns
    -------
    str
        Text that :func:`parse_expression` rebuilds to ``expr`` exactly (floats included).
    """
    return sp.srepr(expr)
