"""The generated allowlist is current, and the rules keep every known gadget out."""

from __future__ import annotations

import tomllib
import warnings

import pytest
from modelport.core.scan import Outcome, scan
from modelport.core.scan._generate import (
    _resolve,
    build,
    dangerous,
    models_to_record,
    output_path,
)
from modelport.core.scan.allowlist import load

#: Callables that import, evaluate, touch files, spawn, reach the network or call what they are
#: given. The rules must refuse each, and no allowlist may hold any.
GADGETS = [
    "builtins.getattr", "builtins.eval", "builtins.exec", "builtins.__import__", "builtins.open",
    "builtins.compile", "os.system", "posix.system", "subprocess.Popen", "subprocess.run",
    "functools.partial", "functools.reduce", "operator.attrgetter", "operator.methodcaller",
    "operator.itemgetter", "importlib.import_module", "pickle.loads", "pydoc.locate",
    "runpy.run_path", "socket.create_connection", "shutil.rmtree", "io.open",
    "numpy.load", "numpy.save", "numpy.fromfile", "numpy.loadtxt", "numpy.genfromtxt",
    "numpy.frompyfunc", "numpy.vectorize", "numpy.apply_along_axis", "numpy.memmap",
    "numpy.lib._npyio_impl.load", "numpy.testing.assert_equal", "numpy.ctypeslib.load_library",
    "numpy.piecewise", "numpy.lib.format.read_array",
    "scipy.io.loadmat", "scipy.io.savemat", "scipy.sparse.load_npz", "scipy.sparse.save_npz",
    "joblib.load", "joblib.numpy_pickle.load", "joblib.Parallel", "sklearn.utils.parallel.delayed",
    "sklearn.datasets.fetch_openml", "sklearn.datasets.load_svmlight_file",
    "sklearn.utils._testing.TempMemmap", "sklearn.externals._packaging.version.parse",
]  # fmt: skip


def test_generated_allowlist_is_current() -> None:
    """Regenerate from the installed libraries and compare (run the generator when this fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        text, missing = build(models_to_record())
    assert missing == [], "recorded names no rule admits"
    assert output_path().read_text("utf-8") == text, (
        "allowlist_generated.toml is stale: python -m modelport.core.scan._generate"
    )


@pytest.mark.parametrize("qualname", GADGETS)
def test_rules_refuse_every_known_gadget(qualname: str) -> None:
    assert dangerous(qualname, _resolve(qualname)) is not None
    module, _, name = qualname.rpartition(".")
    for table in load().values():
        assert table.uses(module, name) is None


def test_every_generated_name_passes_the_rules() -> None:
    doc = tomllib.loads(output_path().read_text("utf-8"))
    names = {q for group, body in doc.items() if group != "arguments" for q in body["allow"]}
    assert len(names) > 400
    refused = {q: r for q in names if (r := dangerous(q, _resolve(q))) is not None}
    assert refused == {}


def test_rules_refuse_by_behaviour_not_only_by_name() -> None:
    class Deleter:
        def __del__(self) -> None:
            pass

    def applies(func: object, x: object) -> object:
        return x

    assert "__del__" in str(dangerous("sklearn.x.Deleter", Deleter))
    assert "callable" in str(dangerous("sklearn.x.applies", applies))
    assert dangerous("sklearn.feature_extraction.text.CountVectorizer") is None
    assert dangerous("sklearn.semi_supervised._label_propagation.LabelSpreading") is None


def _function_transformer(func: object) -> bytes:
    import pickle

    from sklearn.preprocessing import FunctionTransformer

    return pickle.dumps(FunctionTransformer(func=func), protocol=4)


@pytest.mark.parametrize("kind", ["numpy.load", "partial", "methodcaller", "numpy.fromfile"])
def test_function_transformer_holding_a_gadget_is_refused(kind: str) -> None:
    import functools
    import operator

    import numpy as np

    func = {
        "numpy.load": np.load,
        "partial": functools.partial(np.log1p),
        "methodcaller": operator.methodcaller("tofile", "/tmp/x"),
        "numpy.fromfile": np.fromfile,
    }[kind]
    verdict = scan(_function_transformer(func), expected_format="pkl")
    assert verdict.outcome is not Outcome.SAFE
    assert any("not allowlisted" in f.message for f in verdict.findings)


def test_function_transformer_holding_a_ufunc_is_accepted() -> None:
    import numpy as np

    assert scan(_function_transformer(np.log1p), expected_format="pkl").outcome is Outcome.SAFE
