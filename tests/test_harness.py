"""The test harness's own rules (tests/conftest.py), checked on small suites of their own.

Each check runs pytest in a subprocess on a generated suite, with the project's conftest
loaded as a plugin (`-p tests.conftest`) and pytest-xdist as `make test` uses it
(tools/run_tests.py: `-n N --dist loadgroup`):
- two tests with one id make the run fail, saying which (pytest-xdist would run only one);
- the tests of the files of one XDIST_GROUPS group all run in one worker, whatever their
  folder or class, while the other tests are spread test by test;
- every test collected is run once: none dropped, none run twice.
Other plugins are not loaded in those runs (they take seconds to import and play no part).
"""
from __future__ import annotations

import collections
import textwrap

import pytest

from tests.conftest import ROOT, XDIST_GROUPS

pytest_plugins = ["pytester"]

LOADGROUP = ("-n", "2", "--dist", "loadgroup")

#: each generated test file: four tests, one of them in a class
TEST_FILE = textwrap.dedent("""
    import pytest

    def test_one():
        pass

    @pytest.mark.parametrize("n", [1, 2])
    def test_each(n):
        pass

    class TestInClass:
        def test_method(self):
            pass
""")
TESTS_IN_FILE = ("test_one", "test_each[1]", "test_each[2]", "TestInClass::test_method")

#: every test of a generated suite appends its node id to ran/<the worker that ran it>
RECORDING_CONFTEST = textwrap.dedent("""
    import os
    import pytest

    @pytest.fixture(autouse=True)
    def _record(request):
        ran = request.config.rootpath / "ran"
        ran.mkdir(exist_ok=True)
        with open(ran / os.environ.get("PYTEST_XDIST_WORKER", "main"), "a") as out:
            out.write(request.node.nodeid + "\\n")
""")


@pytest.fixture
def suite(pytester, monkeypatch):
    """A pytester directory whose pytest subprocesses import the project's conftest; the
    generated tests live in `suite/`, a name that leaves the project's `tests` package alone."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.mkdir("suite")
    return pytester


def _run(pytester, *args: str):
    return pytester.runpytest_subprocess("-p", "xdist", "-p", "tests.conftest", "-q", *args, timeout=120)


def _write_suite(pytester, names: list[str]) -> set[str]:
    """One TEST_FILE per name, every other one in a subfolder; returns the node ids."""
    pytester.makeconftest(RECORDING_CONFTEST)
    expected = set()
    for index, name in enumerate(names):
        rel = f"suite/deeper/{name}" if index % 2 else f"suite/{name}"
        path = pytester.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(TEST_FILE)
        expected |= {f"{rel}::{test}" for test in TESTS_IN_FILE}
    return expected


def _worker_of(pytester) -> dict[str, str]:
    """Node id → the worker that ran it; a test run twice fails here."""
    ran = collections.defaultdict(list)
    for record in (pytester.path / "ran").iterdir():
        for nodeid in record.read_text().split():
            ran[nodeid].append(record.name)
    assert {nodeid: workers for nodeid, workers in ran.items() if len(workers) > 1} == {}
    return {nodeid: workers[0] for nodeid, workers in ran.items()}


def _file_name(nodeid: str) -> str:
    return nodeid.split("::", 1)[0].rsplit("/", 1)[-1]


@pytest.mark.parametrize("args", [(), LOADGROUP], ids=["one process", "xdist workers"])
def test_two_tests_with_one_id_are_refused(suite, args):
    """A plugin that makes two items of one name (as Schemathesis did for its operations)
    stops the run at collection, naming the id, also when workers collect (where an error
    of theirs used to be lost in an unexplained INTERNALERROR); no test runs."""
    suite.makeconftest(textwrap.dedent("""
        import pytest

        @pytest.hookimpl(tryfirst=True)
        def pytest_pycollect_makeitem(collector, name, obj):
            if name == "test_operation":
                return [pytest.Function.from_parent(collector, name=name, callobj=obj) for _ in range(2)]
    """))
    (suite.path / "suite" / "test_api.py").write_text("def test_operation():\n    pass\n\n\ndef test_other():\n    pass\n")

    result = _run(suite, *args)

    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    assert "1 test ids stand for more than one test: ['suite/test_api.py::test_operation']" in result.stderr.str()
    assert "INTERNALERROR" not in result.stdout.str()
    assert "passed" not in result.stdout.str()


def test_distinct_ids_are_not_refused(suite):
    """One test name in two files, and a parametrisation with equal values (pytest numbers
    the ids), are distinct tests: all run."""
    for name in ("test_a.py", "test_b.py"):
        (suite.path / "suite" / name).write_text(
            "import pytest\n\n\n@pytest.mark.parametrize('x', [1, 1])\ndef test_same(x):\n    pass\n")

    result = _run(suite, *LOADGROUP)

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=4)


def test_each_group_runs_in_one_worker_and_every_test_runs_once(suite):
    grouped = [name for names in XDIST_GROUPS.values() for name in names]
    expected = _write_suite(suite, grouped + [f"test_free_{i}.py" for i in range(6)])

    result = _run(suite, *LOADGROUP)

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=len(expected))
    worker_of = _worker_of(suite)
    assert set(worker_of) == expected
    assert set(worker_of.values()) == {"gw0", "gw1"}
    for group, names in XDIST_GROUPS.items():
        members = {nodeid: worker_of[nodeid] for nodeid in expected if _file_name(nodeid) in names}
        assert len(members) == len(names) * len(TESTS_IN_FILE)
        assert len(set(members.values())) == 1, (group, members)


def test_other_tests_are_spread_test_by_test(suite):
    """Outside the groups each test is a unit of work of its own: the first ones go to
    both workers in turn, so the first file's tests run in both (pytest-xdist's
    `loadscope` would keep each file in one worker)."""
    expected = _write_suite(suite, ["test_free_a.py", "test_free_b.py"])

    result = _run(suite, *LOADGROUP)

    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.assert_outcomes(passed=len(expected))
    worker_of = _worker_of(suite)
    assert set(worker_of) == expected
    workers_by_file = collections.defaultdict(set)
    for nodeid, worker in worker_of.items():
        workers_by_file[_file_name(nodeid)].add(worker)
    assert {"gw0", "gw1"} in workers_by_file.values(), workers_by_file
