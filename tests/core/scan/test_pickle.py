"""The pickle walker, joblib array records, limits and the verdict plumbing."""

from __future__ import annotations

import io
import pickle
import struct
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
from modelport.core.errors import BadInput
from modelport.core.scan import Code, Limits, Outcome, UnsafeModel, ensure_safe, scan
from modelport.core.scan.allowlist import parse, policy
from modelport.core.scan.joblib import BadRecord, dtype_info
from modelport.core.scan.limits import Deadline
from modelport.core.scan.pickle import (
    DictV,
    Global,
    Instance,
    PickleWalker,
    Recorder,
    walk_single,
)

from testing.malicious import call, glob, proto, system, text
from tests.core.scan.conftest import joblib_bytes


def _codes(data: bytes, fmt: str = "pkl", **limits: Any) -> list[str]:
    verdict = scan(data, expected_format=fmt, limits=Limits(**limits))
    return [f.code.value for f in verdict.findings]


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_data_is_safe_at_every_protocol(protocol: int) -> None:
    value = {
        "a": [1, 2.5, "x", b"y", None, True],
        "b": (1, (2, 3)),
        "c": {1, 2},
        "d": frozenset({3}),
        "e": bytearray(b"z"),
        "f": 2**100,
        "g": OrderedDict(a=1),
    }
    assert _codes(pickle.dumps(value, protocol=protocol)) == []


def test_large_framed_pickle_with_big_bytes_is_safe() -> None:
    # Protocol 5 writes bytes over the frame size outside frames, between FRAME opcodes.
    value = [b"a" * 200_000, "s" * 70_000, list(range(20_000)), b"b" * 10]
    assert _codes(pickle.dumps(value, protocol=5)) == []


def test_numpy_arrays_in_plain_pickles_are_safe() -> None:
    arrays = [np.arange(10.0), np.zeros((3, 2), dtype=np.int32), np.array(["a", "bc"]),
              np.array([1, "x"], dtype=object), np.float64(3.5)]  # fmt: skip
    for protocol in (2, 4, 5):
        assert _codes(pickle.dumps(arrays, protocol=protocol)) == []


def test_protocol_2_names_are_mapped_like_the_unpickler_does() -> None:
    # __builtin__.set in a protocol 2 pickle means builtins.set (fix_imports).
    data = proto(2) + glob("__builtin__", "set") + b"]" + b"\x85R."
    assert _codes(data) == []
    assert _codes(proto(4) + glob("__builtin__", "set") + b"]" + b"\x85R.") == ["disallowed_global"]


def test_every_disallowed_import_is_reported_not_just_the_first() -> None:
    data = proto(2) + b"(" + call("os", "system", "a") + call("subprocess", "run", "b") + b"t."
    findings = scan(data, expected_format="pkl").findings
    assert {f.message for f in findings} == {
        "import of os.system is not allowlisted",
        "import of subprocess.run is not allowlisted",
    }


def test_location_points_at_the_opcode() -> None:
    data = proto(2) + b"N0" + call("os", "system", "x") + b"."
    finding = scan(data, expected_format="pkl", name="m.pkl").findings[0]
    assert finding.location == "m.pkl@4"


def test_trailing_bytes_after_stop_are_refused() -> None:
    assert _codes(pickle.dumps(1, protocol=4) + b"\x00") == ["trailing_data"]


def test_truncated_pickles_are_refused() -> None:
    assert _codes(pickle.dumps("hello" * 10, protocol=4)[:-3]) == ["frame_violation"]
    assert _codes(pickle.dumps("hello" * 10, protocol=2)[:-3]) == ["malformed"]


def test_memo_get_of_missing_key_is_malformed() -> None:
    assert _codes(proto(2) + b"h\x05.") == ["malformed"]


def test_frame_must_not_start_inside_a_frame() -> None:
    inner = b"\x95" + struct.pack("<Q", 2) + b"N."
    data = proto(4) + b"\x95" + struct.pack("<Q", len(inner) + 1) + b"N" + inner
    assert "frame_violation" in _codes(data)


def test_stop_before_the_end_of_a_frame_is_refused() -> None:
    body = b"N." + b"N"
    data = proto(4) + b"\x95" + struct.pack("<Q", len(body)) + body
    assert _codes(data) == ["frame_violation"]


def test_setitems_on_allowlisted_dict_type_is_allowed_but_not_on_lists() -> None:
    ok = proto(2) + call("collections", "OrderedDict") + b"(" + text("k") + b"K\x01u."
    assert _codes(ok) == []
    bad = proto(2) + b"](" + text("k") + b"K\x01u."
    assert _codes(bad) == ["disallowed_mutation"]


def test_build_on_an_instance_of_an_allowlisted_class_is_allowed() -> None:
    cls = glob("sklearn.linear_model._logistic", "LogisticRegression")
    data = proto(2) + cls + b")\x81}" + text("C") + b"G" + struct.pack(">d", 1.0) + b"sb."
    assert _codes(data) == []


def test_limits_give_undecidable_with_the_limit_named() -> None:
    deep = proto(2) + b"(" * 300 + b"N" + b"t" * 300 + b"."
    verdict = scan(deep, expected_format="pkl")
    assert verdict.outcome is Outcome.UNDECIDABLE
    assert verdict.findings[0].location == "max_depth"
    many = pickle.dumps(list(range(5000)), protocol=2)
    assert _codes(many, max_opcodes=100) == ["limit_exceeded"]
    assert _codes(pickle.dumps("x" * 5000, protocol=4), max_string_bytes=100) == ["limit_exceeded"]


def test_decompression_bomb_is_undecidable() -> None:
    data = joblib_bytes(np.zeros(10_000_000, dtype=np.uint8), ("zlib", 9))
    verdict = scan(data, expected_format="joblib", limits=Limits(max_decompressed_bytes=1 << 20))
    assert verdict.outcome is Outcome.UNDECIDABLE
    assert "max_decompressed_bytes" in verdict.findings[0].message


def test_time_limit_is_undecidable() -> None:
    data = joblib_bytes(np.arange(1000), ("zlib", 3))
    verdict = scan(data, expected_format="joblib", limits=Limits(max_seconds=-1))
    assert verdict.outcome is Outcome.UNDECIDABLE
    assert verdict.findings[0].location == "max_seconds"


def test_joblib_structured_and_string_arrays_are_read_exactly() -> None:
    structured = np.zeros(3, dtype=[("a", "<i8"), ("b", "<f4"), ("c", "S3")])
    value = {"s": structured, "u": np.array(["ab", "cde"]), "f": np.asfortranarray(np.eye(3)),
             "d": np.array(["2020-01-01"], dtype="M8[D]"), "z": np.zeros((0, 4)),
             "sub": np.zeros(2, dtype=("<f4", (3,))), "after": "tail"}  # fmt: skip
    assert _codes(joblib_bytes(value), "joblib") == []


def test_dtype_info_rejects_inconsistent_states() -> None:
    dtype = Global("numpy", "dtype", frozenset({"call", "build"}))
    good = Instance(dtype, ("f8", False, True))
    good.state = (3, "<", None, None, None, -1, -1, 0)
    assert dtype_info(good).itemsize == 8
    lying = Instance(dtype, ("f8", False, True))
    lying.state = (3, "<", None, None, None, 4, -1, 0)
    with pytest.raises(BadRecord):
        dtype_info(lying)
    obj = Instance(dtype, ("O8", False, True))
    obj.state = (3, "|", None, None, None, -1, -1, 63)
    assert dtype_info(obj).hasobject
    weird = Instance(dtype, ("f8; import os", False, True))
    with pytest.raises(BadRecord):
        dtype_info(weird)
    fields = Instance(dtype, ("V16", False, True))
    fields.state = (3, "|", None, ("a",), DictV([("a", (good, 12))]), 16, 1, 0)
    with pytest.raises(BadRecord):
        dtype_info(fields)


def test_recorder_lists_globals_with_their_uses() -> None:
    rec = Recorder()
    data = pickle.dumps(np.arange(3), protocol=2)
    assert walk_single(data, rec, Limits(), Deadline(10)) == []
    assert "call" in rec.seen["numpy._core.multiarray._reconstruct"]


def test_allowlist_entries_need_a_reason_and_known_uses() -> None:
    with pytest.raises(ValueError, match="why"):
        parse('[g]\nallow = {"a.b" = "call"}\n')
    with pytest.raises(ValueError, match="unknown uses"):
        parse('[g]\nwhy = "x"\nallow = {"a.b" = "exec"}\n')
    table = parse('[g]\nwhy = "x"\npolicies = ["torch"]\nallow = {"a.b.c" = "call build"}\n')
    assert table["torch"].uses("a.b", "c") == frozenset({"call", "build"})
    assert table["sklearn"].uses("a.b", "c") is None


def test_argument_rules_are_data_checked_against_the_allowlist() -> None:
    text = (
        '[g]\nwhy = "x"\nallow = {"a.f" = "call", "a.C" = ""}\n'
        '[arguments]\nwhy = "y"\n[arguments.allow]\n"a.f" = { 0 = ["a.C"] }\n'
    )
    table = parse(text)["sklearn"]
    assert table.argument_ok("a.f", 0, "a.C")
    assert not table.argument_ok("a.f", 1, "a.C")
    assert not table.argument_ok("a.g", 0, "a.C")
    with pytest.raises(ValueError, match="not allowlisted"):
        parse(text.replace('["a.C"]', '["a.D"]'))


def test_shipped_allowlist_has_no_dangerous_names() -> None:
    dangerous = {("builtins", "getattr"), ("builtins", "eval"), ("builtins", "exec"),
                 ("posix", "system"), ("os", "system"), ("functools", "partial"),
                 ("numpy", "load"), ("operator", "attrgetter"), ("pickle", "loads")}  # fmt: skip
    for name in ("sklearn", "torch"):
        table = policy(name)
        assert not dangerous & set(table.entries)
        assert all(
            not module.startswith(("os", "subprocess", "sys")) for module, _ in table.entries
        )


def test_walker_never_calls_the_persistent_hook_outside_torch() -> None:
    walker = PickleWalker(b"\x80\x02NQ.", policy("sklearn"), Limits(), Deadline(5))
    with pytest.raises(Exception, match="persistent ids"):
        walker.walk(0, 5)


def test_ensure_safe_raises_the_shared_error_shape() -> None:
    with pytest.raises(UnsafeModel) as info:
        ensure_safe(system("true"), "pkl")
    err = info.value
    assert isinstance(err, BadInput)
    assert err.status == 400 and err.code == "unsafe_model"
    assert err.details[0]["code"] == Code.DISALLOWED_GLOBAL.value
    assert err.body()["error"]["code"] == "unsafe_model"
    assert ensure_safe(pickle.dumps({"a": 1}), "pkl").outcome is Outcome.SAFE


def test_streams_and_paths_give_the_same_verdict(tmp_path: Any) -> None:
    data = pickle.dumps({"w": np.arange(4)}, protocol=5)
    path = tmp_path / "m.pkl"
    path.write_bytes(data)
    a, b, c = scan(data, expected_format="pkl"), scan(path), scan(io.BytesIO(data), name="m.pkl")
    assert a.sha256 == b.sha256 == c.sha256
    assert a.outcome is b.outcome is c.outcome is Outcome.SAFE


def test_name_and_content_must_agree(tmp_path: Any) -> None:
    assert _codes(pickle.dumps(1), "onnx") == ["format_mismatch"]
    assert _codes(b"", "pkl") == ["unsupported_format"]
    verdict = scan(b"\x80\x04N.", name="model.exe")
    assert verdict.findings[0].code is Code.UNSUPPORTED_FORMAT


def test_verdict_names_the_rules_it_was_made_with() -> None:
    from modelport.core.scan import SCANNER_VERSION, scanner_version

    verdict = scan(pickle.dumps(1), expected_format="pkl")
    assert verdict.scanner_version == scanner_version()
    version, _, digest = verdict.scanner_version.partition("+")
    assert version == SCANNER_VERSION and len(digest) == 12
    assert verdict.to_dict()["scannerVersion"] == verdict.scanner_version


def test_names_passed_as_keywords_are_refused() -> None:
    cls = glob("sklearn.linear_model._logistic", "LogisticRegression")
    kwargs = b"}" + text("f") + glob("numpy", "dtype") + b"s"
    assert _codes(proto(4) + cls + b")" + kwargs + b"\x92.") == ["disallowed_call"]
    assert _codes(proto(4) + cls + b")}" + b"\x92.") == []
