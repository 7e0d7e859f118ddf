#!/usr/bin/env python3
"""run.py -- mutation testing: plants each bug of mutations.txt, one at a
time, in a copy of this tree, runs the suite and reports whether it failed.

    python3 tests/mutation/run.py [--only ID]... [--list] [--dir DIR] [--keep]

Each mutation replaces one exact piece of text in one file. The text must
occur exactly once: a mutation whose text is gone (the code moved on) is
reported as STALE, never as caught. A mutation is CAUGHT when the suite ran
and failed (prove's summary says FAIL, or a sanitizer stopped a test), and
BROKEN when the tree did not build at all (the mutation is then a compile
error, which proves nothing about the tests). Suites: `test` runs `make
test`; `asan` runs `make check-asan` (for bugs that only a sanitizer sees).

The copy lives in DIR (default: $TMPDIR/lane-mutation) and keeps its build
directories between mutations, so each run rebuilds only what the mutation
touched. Logs: DIR/logs/ID.log. Exit status 0 when every mutation was
caught, 1 otherwise. Not part of `make test`: a full run takes about half
an hour.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def parse(path):
    """Reads mutations.txt: blocks of
         ### ID | AREA | SUITE
         file PATH
         why ONE LINE
         <<<
         old text
         ===
         new text
         >>>
    """
    muts, cur, mode, lines = [], None, None, []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if mode in ("old", "new"):
                if line == "===" and mode == "old":
                    cur["old"], lines, mode = "\n".join(lines), [], "new"
                elif line == ">>>" and mode == "new":
                    cur["new"], lines, mode = "\n".join(lines), [], None
                    muts.append(cur)
                    cur = None
                else:
                    lines.append(line)
                continue
            if line.startswith("### "):
                parts = [p.strip() for p in line[4:].split("|")]
                if len(parts) != 3 or parts[2] not in ("test", "asan"):
                    sys.exit("%s:%d: want '### ID | AREA | test|asan'" % (path, n))
                cur = {"id": parts[0], "area": parts[1], "suite": parts[2], "line": n}
            elif line.startswith("file "):
                cur["file"] = line[5:].strip()
            elif line.startswith("why "):
                cur["why"] = line[4:].strip()
            elif line == "<<<":
                mode, lines = "old", []
            elif line.strip() and not line.startswith("#"):
                sys.exit("%s:%d: unexpected line: %s" % (path, n, line))
    if mode:
        sys.exit("%s: the last mutation is not closed with >>>" % path)
    ids = [m["id"] for m in muts]
    dup = {i for i in ids if ids.count(i) > 1}
    if dup:
        sys.exit("%s: duplicate ids: %s" % (path, ", ".join(sorted(dup))))
    return muts


def copy_tree(dst):
    """The tracked and untracked (not ignored) files of this checkout."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           check=True, capture_output=True).stdout.split(b"\0")
    for rel in files:
        if not rel:
            continue
        rel = rel.decode()
        src, to = os.path.join(ROOT, rel), os.path.join(dst, rel)
        if not os.path.isfile(src):
            continue
        os.makedirs(os.path.dirname(to), exist_ok=True)
        if not os.path.exists(to) or open(src, "rb").read() != open(to, "rb").read():
            shutil.copy2(src, to)
    # A file the checkout no longer has (moved, deleted) goes from the copy
    # too: a reused DIR kept compiler/main.c after it moved to compiler/cli/,
    # and the stale file broke the baseline build. Build directories
    # (build*, ignored by git) stay, so rebuilds stay incremental.
    keep = {f.decode() for f in files if f}
    for top, dirs, names in os.walk(dst):
        rel_top = os.path.relpath(top, dst)
        if rel_top == "." :
            dirs[:] = [d for d in dirs if not d.startswith("build") and d not in ("logs", ".git")]
        dirs[:] = [d for d in dirs if d not in ("node_modules", "__pycache__")]
        for n in names:
            rel = os.path.normpath(os.path.join(rel_top, n))
            if rel not in keep and not n.endswith((".o", ".d", ".pyc")):
                os.remove(os.path.join(top, n))


def failed_tests(log):
    """The test programs prove listed as failing, or a sanitizer's verdict."""
    names = re.findall(r"^(\S+)\s+\(Wstat: ", log, re.M)
    if names:
        return ", ".join(sorted(set(os.path.basename(n) for n in names)))
    m = re.search(r"(AddressSanitizer|UndefinedBehaviorSanitizer|runtime error)", log)
    return m.group(1) if m else ""


def run_one(m, work, logs):
    path = os.path.join(work, m["file"])
    if not os.path.isfile(path):
        return "STALE", "no file %s" % m["file"], 0
    src = open(path, encoding="utf-8").read()
    count = src.count(m["old"])
    if count != 1:
        return "STALE", "the text occurs %d times in %s" % (count, m["file"]), 0
    target = "test" if m["suite"] == "test" else "check-asan"
    t0 = time.time()
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(src.replace(m["old"], m["new"]))
        p = subprocess.run(["make", "--no-print-directory", target], cwd=work,
                           capture_output=True, text=True,
                           env=dict(os.environ, LANE_TEST_TIMEOUT="600"))
    finally:
        with open(path, "w", encoding="utf-8") as f:
            f.write(src)
        # The restored file must look newer than the objects built from the
        # mutant, so that the next run rebuilds them.
        now = time.time() + 1
        os.utime(path, (now, now))
    log = p.stdout + p.stderr
    with open(os.path.join(logs, m["id"] + ".log"), "w", encoding="utf-8") as f:
        f.write(log)
    secs = time.time() - t0
    if p.returncode == 0:
        return "MISSED", "the suite passed", secs
    if "Result: FAIL" in log or failed_tests(log):
        return "caught", failed_tests(log) or "prove: FAIL", secs
    return "BROKEN", "the tree did not build (see the log)", secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", action="append", default=[], help="run only this mutation id")
    ap.add_argument("--list", action="store_true", help="list the mutations and stop")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "lane-mutation"))
    ap.add_argument("--file", default=os.path.join(HERE, "mutations.txt"))
    a = ap.parse_args()
    muts = parse(a.file)
    if a.only:
        unknown = set(a.only) - {m["id"] for m in muts}
        if unknown:
            sys.exit("no such mutation: %s" % ", ".join(sorted(unknown)))
        muts = [m for m in muts if m["id"] in a.only]
    if a.list:
        for m in muts:
            print("%-32s %-10s %-5s %s: %s" % (m["id"], m["area"], m["suite"], m["file"],
                                                m.get("why", "")))
        return 0
    work = os.path.abspath(a.dir)
    logs = os.path.join(work, "logs")
    os.makedirs(logs, exist_ok=True)
    copy_tree(work)
    # The unmutated tree must pass first, or nothing below means anything.
    for suite in sorted({m["suite"] for m in muts}):
        target = "test" if suite == "test" else "check-asan"
        print("# baseline: make %s ..." % target, flush=True)
        p = subprocess.run(["make", "--no-print-directory", target], cwd=work,
                           capture_output=True, text=True)
        if p.returncode != 0:
            open(os.path.join(logs, "baseline-%s.log" % suite), "w").write(p.stdout + p.stderr)
            sys.exit("the unmutated tree fails make %s: see %s/baseline-%s.log" %
                     (target, logs, suite))
    rows = []
    for i, m in enumerate(muts, 1):
        print("# %d/%d %s (%s, make %s) ..." % (i, len(muts), m["id"], m["file"],
                                                 "test" if m["suite"] == "test" else "check-asan"),
              flush=True)
        res, detail, secs = run_one(m, work, logs)
        rows.append((m, res, detail, secs))
        print("#   %s: %s (%.0f s)" % (res, detail, secs), flush=True)
    print()
    print("| # | mutation | area | suite | planted in | result | failed |")
    print("|---|---|---|---|---|---|---|")
    for i, (m, res, detail, _) in enumerate(rows, 1):
        print("| %d | %s: %s | %s | %s | `%s` | %s | %s |" %
              (i, m["id"], m.get("why", ""), m["area"], m["suite"], m["file"], res, detail))
    caught = sum(1 for r in rows if r[1] == "caught")
    print()
    print("%d of %d mutations caught" % (caught, len(rows)))
    return 0 if caught == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
