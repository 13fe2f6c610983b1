"""Crucible's pytest launcher and reporter (see the patch package doc).

Run as: python3 -I /harness/crucible_pytest.py RESULTS PYTEST-ARGS...

-I keeps the work tree, PYTHONPATH and user site-packages off sys.path, so
the pytest imported below is the system's, not a pytest.py or _pytest/ the
candidate planted. The reporter is registered before pytest loads any
plugin, conftest.py or project module. It writes one JSON line per test
phase to RESULTS (outside /work), recording what pytest's own runner
decided, and flags what only tampering explains: a phase that raised but is
reported passed, a report changed after it was made, or pytest internals
replaced during the run.
"""
import inspect
import json
import os
import sys

import pytest  # the system pytest: /work is not on sys.path yet

import _pytest.python
import _pytest.reports
import _pytest.runner
import _pytest.skipping

# Functions and methods that decide or carry a test's outcome.
WATCHED = [
    (_pytest.runner, "call_and_report"),
    (_pytest.runner, "call_runtest_hook"),
    (_pytest.runner, "runtestprotocol"),
    (_pytest.runner, "pytest_runtest_makereport"),
    (_pytest.runner, "CallInfo.from_call"),
    (_pytest.reports, "TestReport.from_item_and_call"),
    (_pytest.reports, "TestReport.__init__"),
    (_pytest.reports, "BaseReport.passed"),
    (_pytest.reports, "BaseReport.failed"),
    (_pytest.reports, "BaseReport.skipped"),
    (_pytest.skipping, "pytest_runtest_makereport"),
    (_pytest.python, "pytest_pyfunc_call"),
    (_pytest.python, "Function.runtest"),
]


def _lookup(mod, dotted):
    obj = mod
    for part in dotted.split("."):
        obj = inspect.getattr_static(obj, part, None)
    return obj


class Reporter:
    def __init__(self, path):
        self.out = open(path, "x", encoding="utf-8", buffering=1)
        self.seen = {}
        self.reported = set()
        self.originals = [(m, n, _lookup(m, n)) for m, n in WATCHED]
        self.modules = {name: sys.modules[name] for name in ("pytest", "_pytest.runner", "_pytest.reports")}

    def write(self, **rec):
        self.out.write(json.dumps(rec) + "\n")

    def tampered(self, why):
        if why not in self.reported:
            self.reported.add(why)
            self.write(kind="tampered", why=why)

    def check_internals(self):
        for mod, name, orig in self.originals:
            if _lookup(mod, name) is not orig:
                self.tampered("pytest internals replaced during the run: %s.%s" % (mod.__name__, name))
        for name, mod in self.modules.items():
            if sys.modules.get(name) is not mod:
                self.tampered("module %s replaced in sys.modules" % name)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        result = yield
        rep = result.get_result()
        self.check_internals()
        raised = call.excinfo is not None
        if raised and rep.outcome == "passed":
            self.tampered("%s: the %s phase raised %s but its report says passed"
                          % (item.nodeid, call.when, call.excinfo.typename))
        self.seen[(rep.nodeid, rep.when)] = rep.outcome
        self.write(kind="phase", nodeid=rep.nodeid, when=rep.when, outcome=rep.outcome,
                   xfail=hasattr(rep, "wasxfail"), raised=raised)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report):
        made = self.seen.get((report.nodeid, report.when))
        if made is None:
            self.tampered("%s: a %s report pytest's runner did not make" % (report.nodeid, report.when))
        elif made != report.outcome:
            self.tampered("%s: the %s report was made %s but logged %s" % (report.nodeid, report.when, made, report.outcome))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session, exitstatus):
        self.check_internals()
        self.write(kind="session", exitstatus=int(exitstatus))


def main():
    reporter = Reporter(sys.argv[1])
    args = sys.argv[2:]
    sys.argv[1:] = args
    # As `python -m pytest` does, the project's root is importable; only now.
    sys.path.insert(0, os.getcwd())
    code = int(pytest.main(args, plugins=[reporter]))
    reporter.write(kind="exit", code=code)
    reporter.out.close()
    sys.exit(code)


if __name__ == "__main__":
    main()
