"""The hand binder gives exactly what Signature.bind + apply_defaults gives."""
import inspect

from hypothesis import given, settings
from hypothesis import strategies as st

from agenttape.boundaries import _binder, to_plain


def slow(func):
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    drop = params[0].name if params and params[0].name in ("self", "cls") else None

    def bind(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            return {"args": to_plain(list(args)), "kwargs": to_plain(kwargs)}
        bound.apply_defaults()
        out = {}
        for name, value in bound.arguments.items():
            if name == drop:
                continue
            if signature.parameters[name].kind is inspect.Parameter.VAR_KEYWORD:
                out.update({str(k): to_plain(v) for k, v in value.items()})
            else:
                out[name] = to_plain(value)
        return out
    return bind


def f1(a, b, c=3): ...
def f2(self, x, *, y=1, z): ...
def f3(a, *, b=2): ...
def f4(a=1, b=2): ...
def f5(a, *args, b=1, **kw): ...
def f6(a, /, b): ...
def f7(): ...
FUNCS = [f1, f2, f3, f4, f5, f6, f7]
NAMES = ["a", "b", "c", "x", "y", "z", "self", "q"]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(FUNCS), st.lists(st.integers(), max_size=4),
       st.dictionaries(st.sampled_from(NAMES), st.integers(), max_size=4))
def test_same(func, args, kwargs):
    fast = _binder(func)(*args, **kwargs)
    assert fast == slow(func)(*args, **kwargs)
    assert list(fast) == list(slow(func)(*args, **kwargs))
