"""Maintainer tool: generate ``allowlist_generated.toml`` from rules over the installed libraries.

``python -m modelport.core.scan._generate`` (add ``--check`` to compare instead of writing)
walks the installed scikit-learn, SciPy and NumPy and emits every name a fitted model may
pickle, grouped by the rule that admits it, each group with its safety argument:

- every estimator from ``sklearn.utils.all_estimators()``;
- the attribute types those estimators pickle, found by fitting each with defaults on tiny data
  (``_estimators``) and recording its pickles, widened to their family (every subclass of the
  topmost scikit-learn base of a recorded class: all kernels once one kernel is seen);
- the Cython reconstructors (``__pyx_unpickle_*``, ``newObj``) of those classes;
- the functions scikit-learn uses as parameter defaults (``f_classif``) and behind its named
  scorers, and functions the recorded fitted state holds;
- NumPy ufuncs and reductions, NumPy masked arrays, SciPy sparse and interpolation data classes.

Every candidate passes :func:`dangerous` first: a name that reads or writes files, imports,
evaluates, spawns, reaches the network, or calls a callable it is given is left out by rule,
whatever group would admit it. Nothing here runs at scan time.
"""

from __future__ import annotations

import importlib
import inspect
import io
import pickle
import re
import sys
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from modelport.core.scan.joblib import walk_joblib
from modelport.core.scan.limits import Deadline, Limits
from modelport.core.scan.pickle import Recorder, walk_single

OUTPUT = "allowlist_generated.toml"

# ---------------------------------------------------------------------------------------------
# What is dangerous, by rule

#: Words that mark a name as touching files, code, processes or the network. A name is split
#: into words (dots, underscores, CamelCase); a word that starts or ends with one of these
#: (``fromfile``, ``loadtxt``, ``savez``) marks it.
_DANGEROUS_STEMS = (
    "load", "read", "open", "file", "save", "dump", "write", "import", "exec", "eval", "spawn",
    "popen", "system", "shell", "socket", "url", "fetch", "download", "pickle", "marshal",
    "getattr", "setattr", "delattr", "callback", "memmap", "mmap", "subprocess", "txt",
)  # fmt: skip
#: Words that mark a name only when they are a whole word (``apply_along_axis``, ``vectorize``;
#: not ``DictVectorizer``).
_DANGEROUS_WORDS = frozenset(
    {"vectorize", "frompyfunc", "partial", "apply", "compile", "temp", "tempfile"}
)
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _dangerous_word(qualname: str) -> str | None:
    for part in re.split(r"[._]", qualname):
        for word in (str(w).lower() for w in _WORD.findall(part)):
            if word in _DANGEROUS_WORDS:
                return word
            for stem in _DANGEROUS_STEMS:
                if word.startswith(stem) or word.endswith(stem):
                    return stem
    return None


#: Modules whose every name is refused: I/O, code loading, processes, callable plumbing.
DANGEROUS_MODULES = (
    "os", "posix", "nt", "sys", "subprocess", "builtins", "io", "_io", "socket", "shutil",
    "pathlib", "importlib", "pickle", "_pickle", "copyreg", "marshal", "functools", "operator",
    "_operator", "ctypes", "code", "codeop", "runpy", "pydoc", "multiprocessing", "threading",
    "urllib", "http", "requests", "webbrowser", "tempfile", "glob", "joblib", "dill", "cloudpickle",
    "numpy.lib.npyio", "numpy.lib._npyio_impl", "numpy.lib.format", "numpy.lib._datasource",
    "numpy.f2py", "numpy.distutils", "numpy.testing", "numpy.ctypeslib", "numpy.lib.recfunctions",
    "scipy.io", "scipy.datasets", "scipy.misc", "scipy._lib._testutils", "scipy.weave",
    "sklearn.datasets", "sklearn.externals", "sklearn.utils._testing", "sklearn.utils.parallel",
    "sklearn.utils._joblib", "sklearn.utils.estimator_checks", "sklearn.utils._show_versions",
    "sklearn.callback", "sklearn.experimental", "sklearn._build_utils", "sklearn.conftest",
)  # fmt: skip
#: Parameters through which a function receives a callable that it then calls.
_CALLABLE_PARAMETERS = frozenset(
    {"func", "function", "fn", "f", "pyfunc", "callback", "callable", "func1d", "loader"}
)
#: Special methods that run code on unpickling or on attribute access. A class may have them
#: only from the libraries being listed (their implementations assign state and check versions).
_HOOKS = ("__reduce__", "__reduce_ex__", "__new__", "__setstate__", "__getattr__", "__setattr__")
_LIBRARIES = ("sklearn", "scipy", "numpy")


def dangerous(qualname: str, obj: Any = None) -> str | None:
    """Why ``qualname`` (and the object it names) can never be allowlisted, or None."""
    module = qualname.rpartition(".")[0]
    for prefix in DANGEROUS_MODULES:
        if module == prefix or module.startswith(prefix + "."):
            return f"module {prefix} does I/O, loads code or applies callables"
    if any(part == "tests" or part.startswith("test_") for part in qualname.split(".")):
        return "test code"
    # Cython names its reconstructors __pyx_unpickle_<Class>; the word is Cython's, not a loader.
    word = _dangerous_word(qualname.replace(".__pyx_unpickle_", "."))
    if word:
        return f"its name says it may {word} (a word of the name)"
    if obj is None:
        return None
    if inspect.isclass(obj):
        for base in obj.__mro__:
            if "__del__" in vars(base):
                return f"{base.__qualname__}.__del__ runs code when the object is collected"
            if base is object or base.__module__ == "builtins":
                continue
            for hook in _HOOKS:
                if hook in vars(base) and not base.__module__.startswith(_LIBRARIES):
                    return f"{base.__module__}.{base.__qualname__}.{hook} is outside the libraries"
        return None
    if callable(obj) and not isinstance(obj, _UFUNC_TYPES()):
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            return "its signature cannot be inspected"
        taken = {p for p in params if p in _CALLABLE_PARAMETERS or "func" in p}
        if taken:
            return f"it calls the callable given as {sorted(taken)[0]!r}"
    return None


def _UFUNC_TYPES() -> tuple[type, ...]:  # noqa: N802 - a lazily imported type tuple
    import numpy as np

    return (np.ufunc,)


# ---------------------------------------------------------------------------------------------
# The generated data


@dataclass
class Group:
    """One rule's output: names with their uses, and the rule's safety argument."""

    name: str
    why: str
    allow: dict[str, set[str]] = field(default_factory=dict)

    def add(self, qualname: str, uses: Iterable[str]) -> None:
        self.allow.setdefault(qualname, set()).update(uses)


@dataclass
class Generated:
    groups: dict[str, Group] = field(default_factory=dict)
    #: callee -> argument position -> names that may be passed there.
    arguments: dict[str, dict[int, set[str]]] = field(default_factory=dict)
    #: qualname -> why the rules left it out (candidates seen and refused).
    refused: dict[str, str] = field(default_factory=dict)

    def group(self, name: str, why: str) -> Group:
        return self.groups.setdefault(name, Group(name, why))

    def names(self) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for group in self.groups.values():
            for qualname, uses in group.allow.items():
                out.setdefault(qualname, set()).update(uses)
        return out

    def offer(self, group: Group, qualname: str, obj: Any, uses: Iterable[str]) -> bool:
        reason = dangerous(qualname, obj)
        if reason is not None:
            self.refused[qualname] = reason
            return False
        group.add(qualname, uses)
        return True

    def argument(self, callee: str, index: int, name: str) -> None:
        self.arguments.setdefault(callee, {}).setdefault(index, set()).add(name)


def _qualname(obj: Any) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def _resolve(qualname: str) -> Any:
    module, _, name = qualname.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _is_extension_type(cls: type) -> bool:
    """A class compiled from Cython (its instances have no ``__dict__`` of their own)."""
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", "") or ""
    return not path.endswith(".py")


# ---------------------------------------------------------------------------------------------
# Rules

_WHY_ESTIMATORS = """Every class from sklearn.utils.all_estimators(). A pickle creates one with
__new__ (no __init__ runs) and BUILD hands BaseEstimator.__setstate__ a dict, which it checks for
the version and assigns; the attributes can only hold data and other allowlisted names."""

_WHY_CLASSES = """The Python classes fitted estimators hold (losses, links, kernels, scorers, CV
splitters, tree nodes, optimizers, metadata records), found by fitting every estimator with
defaults and recording its pickles, widened to every subclass of the topmost scikit-learn base of
each recorded class. Created with __new__, state assigned by BUILD; the rule refuses any class
whose __new__/__setstate__/__reduce__/__getattr__/__setattr__ comes from outside scikit-learn,
SciPy or NumPy, and any class with __del__."""

_WHY_CYTHON = """Compiled scikit-learn classes of the same families (Cython losses, distance
metrics, neighbour trees, the decision tree). Each is rebuilt the way its own __reduce__ says:
calling the class with numbers and arrays (Tree(n_features, n_classes, n_outputs), a loss from
its parameters), or Cython's __pyx_unpickle_<Class>(cls, checksum, state) and scikit-learn's
newObj(cls), which only call cls.__new__ on the one class the [arguments] table allows and then
assign typed fields. No reconstructor reads files or calls anything it is given."""

_WHY_FUNCTIONS = """Pure numerical functions stored in fitted state: the defaults of estimator
parameters (score_func=f_classif, ...), the metrics behind scikit-learn's named scorers
(scoring="balanced_accuracy"), and functions recorded in fitted models (the k-means kernel
BisectingKMeans keeps, array helpers SciPy splines keep). They may only appear as values, never
be called by the pickle; when the model later calls them they compute on arrays."""

_WHY_UFUNCS = """NumPy ufuncs and reductions (numpy.log1p, numpy.mean, ...), the functions users
pass to FunctionTransformer and FeatureAgglomeration. Each is a pure element-wise operation or a
reduction over arrays; none imports, opens files or calls a Python callable. They may only appear
as values."""

_WHY_MASKED = """NumPy masked arrays (GridSearchCV.cv_results_): _mareconstruct(MaskedArray,
ndarray, shape, dtype) allocates an empty array of a class the [arguments] table names, and BUILD
fills it from literal bytes."""

_WHY_SCIPY = """SciPy sparse matrices/arrays and interpolation data classes (BSpline, PPoly, ...):
created with __new__ and given a dict of arrays and numbers as state; the rule refuses classes
with a custom __reduce__/__setstate__ from outside SciPy and NumPy."""

_WHY_ARGUMENTS = """Reconstructors that create an object of the class they are given: each may
only receive the classes its rule found (the Cython class it was generated for, the trees and
metrics of its own module, the masked array class)."""


def _python_class_uses(cls: type) -> set[str]:
    uses = {"new", "build"}
    if issubclass(cls, dict):
        uses.add("setitems")
    if issubclass(cls, list):
        uses.add("appends")
    return uses


def rule_estimators(gen: Generated) -> None:
    from sklearn.utils import all_estimators

    group = gen.group("sklearn_estimators", _WHY_ESTIMATORS)
    for _, cls in all_estimators():
        gen.offer(group, _qualname(cls), cls, _python_class_uses(cls))


def _family_root(cls: type) -> type:
    """The topmost base of ``cls`` defined in scikit-learn that is not a generic base or mixin.

    The bases every estimator shares (BaseEstimator's own bases, mixins) are not families.
    """
    from sklearn.base import BaseEstimator

    generic = set(BaseEstimator.__mro__)
    root = cls
    for base in cls.__mro__[1:]:
        if not base.__module__.startswith("sklearn.") or base in generic:
            continue
        if base.__name__.endswith("Mixin") or issubclass(base, BaseEstimator):
            continue
        root = base
    return root


def _subclasses(root: type) -> Iterator[type]:
    seen: set[type] = set()
    stack = [root]
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        stack.extend(cls.__subclasses__())


def rule_sklearn_classes(gen: Generated, recorded: Recorder) -> None:
    from sklearn.base import BaseEstimator
    from sklearn.utils import all_estimators

    estimators = {cls for _, cls in all_estimators()}
    python = gen.group("sklearn_classes", _WHY_CLASSES)
    cython = gen.group("sklearn_cython", _WHY_CYTHON)
    roots: set[type] = set()
    for qualname in recorded.seen:
        obj = _resolve(qualname)
        if qualname.startswith("sklearn.") and inspect.isclass(obj) and obj not in estimators:
            roots.add(_family_root(obj))
    for root in sorted(roots, key=_qualname):
        for cls in _subclasses(root):
            if not cls.__module__.startswith("sklearn.") or cls in estimators:
                continue
            if issubclass(cls, BaseEstimator) and _qualname(cls) not in recorded.seen:
                continue  # private estimators only as recorded, not their whole hierarchy
            if getattr(sys.modules.get(cls.__module__), cls.__name__, None) is not cls:
                continue  # not importable by the name pickle would write
            if _is_extension_type(cls):
                _cython_class(gen, cython, cls)
            else:
                gen.offer(python, _qualname(cls), cls, _python_class_uses(cls))


def _cython_class(gen: Generated, group: Group, cls: type) -> None:
    """Admit a compiled class with the reconstructor its own ``__reduce__`` uses."""
    qualname = _qualname(cls)
    if dangerous(qualname, cls):
        gen.refused[qualname] = str(dangerous(qualname, cls))
        return
    module = sys.modules[cls.__module__]
    unpickle = getattr(module, f"__pyx_unpickle_{cls.__name__}", None)
    new_obj = getattr(module, "newObj", None)
    if unpickle is not None and cls.__reduce__.__name__ == "__reduce_cython__":
        reconstructor = f"{cls.__module__}.__pyx_unpickle_{cls.__name__}"
    elif new_obj is not None:
        reconstructor = f"{cls.__module__}.newObj"
    else:
        group.add(qualname, {"call", "build"})
        return
    group.add(qualname, set())
    group.add(reconstructor, {"call", "build"})
    gen.argument(reconstructor, 0, qualname)


def rule_functions(gen: Generated, recorded: Recorder) -> None:
    import numpy as np
    from sklearn.metrics import get_scorer, get_scorer_names
    from sklearn.utils import all_estimators

    group = gen.group("sklearn_functions", _WHY_FUNCTIONS)
    for _, cls in all_estimators():
        for param in inspect.signature(cls).parameters.values():
            if inspect.isfunction(param.default):
                gen.offer(group, _qualname(param.default), param.default, ())
    for scorer_name in get_scorer_names():
        func = getattr(get_scorer(scorer_name), "_score_func", None)
        if inspect.isfunction(func):
            gen.offer(group, _qualname(func), func, ())
    for qualname in recorded.seen:
        obj = _resolve(qualname)
        if inspect.isfunction(obj) and qualname.startswith(("sklearn.", "scipy.")):
            gen.offer(group, qualname, obj, ())
        elif isinstance(obj, types.FunctionType | np.ufunc) and qualname.startswith("numpy."):
            continue  # numpy functions are admitted by the ufunc/reduction rule or not at all


#: Where NumPy defines its reductions (functions with ``axis`` and ``keepdims`` parameters).
_REDUCTION_MODULES = ("numpy._core.fromnumeric", "numpy.lib._function_base_impl",
                      "numpy.lib._nanfunctions_impl")  # fmt: skip


def rule_numpy(gen: Generated) -> None:
    import numpy as np

    group = gen.group("numpy_functions", _WHY_UFUNCS)
    for name in sorted(dir(np)):
        obj = getattr(np, name)
        if isinstance(obj, np.ufunc) or (
            callable(obj) and not inspect.isclass(obj) and _is_reduction(obj)
        ):
            gen.offer(group, f"numpy.{name}", obj, ())
    masked = gen.group("numpy_masked", _WHY_MASKED)
    _probe(gen, masked, np.ma.masked_array([1.0, 2.0], mask=[False, True]), "numpy.ma.")


def _is_reduction(func: Any) -> bool:
    module = getattr(func, "__module__", "")
    wrapped = inspect.unwrap(func)
    if module != "numpy" or wrapped.__module__ not in _REDUCTION_MODULES:
        return False
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    return "axis" in params and "keepdims" in params


def _probe(gen: Generated, group: Group, example: Any, prefix: str) -> None:
    """Admit what pickling ``example`` imports, with the uses and arguments seen."""
    rec = Recorder()
    for protocol in (2, 5):
        walk_single(pickle.dumps(example, protocol=protocol), rec, Limits(), Deadline(30))
    for qualname, uses in rec.seen.items():
        if qualname.startswith(prefix):
            gen.offer(group, qualname, _resolve(qualname), uses)
    for callee, positions in rec.arguments.items():
        for index, names in positions.items():
            for name in names:
                gen.argument(callee, index, name)


def rule_scipy(gen: Generated) -> None:
    import scipy.interpolate
    import scipy.sparse

    group = gen.group("scipy_data", _WHY_SCIPY)
    sparse_bases = (scipy.sparse.sparray, scipy.sparse.spmatrix)
    for name in sorted(scipy.sparse.__all__):
        obj = getattr(scipy.sparse, name)
        if inspect.isclass(obj) and issubclass(obj, sparse_bases) and obj not in sparse_bases:
            gen.offer(group, _qualname(obj), obj, _python_class_uses(obj))
    for name in sorted(scipy.interpolate.__all__):
        obj = getattr(scipy.interpolate, name)
        if inspect.isclass(obj) and not _is_extension_type(obj):
            gen.offer(group, _qualname(obj), obj, _python_class_uses(obj))


# ---------------------------------------------------------------------------------------------
# Recording real models


def record(models: dict[str, Any]) -> Recorder:
    """Every global (with its uses) that pickling and joblib-dumping ``models`` writes."""
    import joblib

    rec = Recorder()
    limits = Limits()
    for name, model in models.items():
        for protocol in (2, 5):
            data = pickle.dumps(model, protocol=protocol)
            _fail_on(walk_single(data, rec, limits, Deadline(60), location=name), name)
        buf = io.BytesIO()
        joblib.dump(model, buf)
        _fail_on(walk_joblib(buf.getvalue(), rec, limits, Deadline(60), location=name), name)
    return rec


def _fail_on(findings: list[Any], name: str) -> None:
    if findings:
        raise SystemExit(f"{name}: the walker refused a real model: {findings}")


def generate(recorded: Recorder) -> Generated:
    """Apply every rule; ``recorded`` holds what real fitted models pickle."""
    gen = Generated()
    rule_estimators(gen)
    rule_sklearn_classes(gen, recorded)
    rule_functions(gen, recorded)
    rule_numpy(gen)
    rule_scipy(gen)
    gen.group("arguments", _WHY_ARGUMENTS)
    return gen


def uncovered(recorded: Recorder, allowed: dict[str, set[str]]) -> list[str]:
    """Recorded uses no rule (nor the hand-reviewed file) admits: each needs a rule or review."""
    missing = []
    for qualname, uses in sorted(recorded.seen.items()):
        extra = uses - allowed.get(qualname, set())
        if qualname not in allowed or extra:
            missing.append(f"{qualname} {sorted(extra)}")
    return missing


# ---------------------------------------------------------------------------------------------
# Rendering


def _versions() -> str:
    import numpy
    import scipy
    import sklearn

    return (
        f"scikit-learn {sklearn.__version__}, SciPy {scipy.__version__}, NumPy {numpy.__version__}"
    )


def _why(text: str) -> str:
    return '"""' + text + '"""'


def render(gen: Generated) -> str:
    lines = [
        "# Generated by `python -m modelport.core.scan._generate` -- do not edit.",
        f"# From {_versions()}. The rules and their safety arguments live in _generate.py;",
        "# hand-reviewed groups are in allowlist.toml. The format is allowlist.toml's.",
        "",
    ]
    for group in sorted(gen.groups.values(), key=lambda g: g.name):
        if group.name == "arguments" or not group.allow:
            continue
        lines += [f"[{group.name}]", f"why = {_why(group.why)}", f"[{group.name}.allow]"]
        for qualname in sorted(group.allow):
            lines.append(f'"{qualname}" = "{" ".join(sorted(group.allow[qualname]))}"')
        lines.append("")
    lines += ["[arguments]", f"why = {_why(gen.groups['arguments'].why)}", "[arguments.allow]"]
    for callee in sorted(gen.arguments):
        rules = ", ".join(
            f"{index} = [{', '.join(repr_str(n) for n in sorted(names))}]"
            for index, names in sorted(gen.arguments[callee].items())
        )
        lines.append(f'"{callee}" = {{ {rules} }}')
    return "\n".join(lines) + "\n"


def repr_str(text: str) -> str:
    return f'"{text}"'


def models_to_record() -> dict[str, Any]:
    import numpy as np
    from modelport.core.scan import _estimators

    fitted = {n: f.model for n, f in _estimators.fit_all().items() if f.model is not None}
    np.random.seed(0)  # the same fitted state in every process (see _estimators.fit_one)
    extra = {**_estimators.composite_models(), **_estimators.option_variants()}
    return {**fitted, **extra, **_estimators.sklearn_models()}


def build(models: dict[str, Any]) -> tuple[str, list[str]]:
    """The generated file's text and the recorded uses nothing admits."""
    from modelport.core.scan.allowlist import hand_reviewed_names

    recorded = record(models)
    gen = generate(recorded)
    allowed = gen.names()
    for qualname, uses in hand_reviewed_names().items():
        allowed.setdefault(qualname, set()).update(uses)
    return render(gen), uncovered(recorded, allowed)


def output_path() -> Path:
    return Path(str(resources.files("modelport.core.scan").joinpath(OUTPUT)))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text, missing = build(models_to_record())
    if missing:
        print(
            "no rule admits these recorded names (add a rule or review them):", *missing, sep="\n  "
        )
        return 1
    path = output_path()
    if "--check" in args:
        if path.read_text("utf-8") != text:
            print(f"{path} is stale: run python -m modelport.core.scan._generate")
            return 1
        return 0
    path.write_text(text, "utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
