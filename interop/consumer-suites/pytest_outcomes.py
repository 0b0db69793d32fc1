"""A pytest plugin that journals every test as it runs (loaded with `-p pytest_outcomes`).

It changes nothing in the suite: it only appends one JSON line per event to the file named by
CONSUMER_SUITES_JOURNAL, flushed at once, so that a test that kills the interpreter (a segfault
in the module under test) is still known: it has a "start" line and no final outcome.
"""

import json
import os

_journal = None


def _write(record):
    global _journal
    if _journal is None:
        _journal = open(os.environ["CONSUMER_SUITES_JOURNAL"], "a", encoding="utf-8")
    _journal.write(json.dumps(record) + "\n")
    _journal.flush()


def pytest_runtest_logstart(nodeid, location):
    _write({"event": "start", "nodeid": nodeid})


def pytest_runtest_logreport(report):
    detail = ""
    if report.failed:
        detail = report.longreprtext[-4000:]
    elif report.skipped:
        longrepr = report.longrepr
        detail = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr or "")
    record = {
        "event": "report",
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "detail": detail,
    }
    if hasattr(report, "wasxfail"):
        record["wasxfail"] = report.wasxfail or "xfail"
    _write(record)
