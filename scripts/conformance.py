#!/usr/bin/env python3
"""Score stepwise against the AWS-recorded conformance corpus and check the expected failures.

Starts nothing: give it a running server's endpoint. Runs conformance/run.py of the shared folder
($STEPWISE_SHARED_DIR, default ../shared beside the repository) over the
topics this build covers, prints the pass count, and compares failures with
tests/conformance/expected-failures.txt (one `case id<TAB>reason` per line). It exits 1 when a
case fails that is not listed (a regression) or when the pass rate of the topics' execution
cases is below --min-pass-rate; cases listed but now passing are reported so the list shrinks.

    python3 scripts/conformance.py --endpoint http://127.0.0.1:8083

With --services it scores the services corpus (conformance/services: cases that call Lambda, SQS,
SNS, DynamoDB, EventBridge and S3) against tests/conformance/expected-failures-services.txt. The
runner provisions the cases' resources at --services-endpoint (a moto server) and serves their
Lambda functions itself at --lambda-stub; the server must send its calls there
(`stepwise serve --lambda-endpoint http://LAMBDA_STUB --aws-endpoint SERVICES_ENDPOINT`). The
cases marked `service_emulator_gaps` (moto answers them unlike AWS) are counted apart: their
failures need no listing, and the pass rate is over the other cases.

    python3 scripts/conformance.py --services --endpoint http://127.0.0.1:8083 \
        --services-endpoint http://127.0.0.1:5000 --lambda-stub 127.0.0.1:9001
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The shared folder, found as the Rust tests find it (tests/shared_dir.rs).
SHARED = os.environ.get("STEPWISE_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
DEFAULT_CORPUS = os.path.normpath(os.path.join(SHARED, "conformance"))
# Topics whose execution cases must pass at --min-pass-rate (the core service and tasks)...
RATE_TOPICS = ["base", "choice_operators", "intrinsic_functions", "context_object", "api",
               "activities", "callback", "timeouts", "error_handling"]
# ...and topics that are run for regressions only, while their features are being built.
TOPICS = RATE_TOPICS + ["assign", "scenarios", "evaluate_jsonata", "query_language", "test_state"]
EXPECTED = os.path.join(ROOT, "tests", "conformance", "expected-failures.txt")
EXPECTED_SERVICES = os.path.join(ROOT, "tests", "conformance", "expected-failures-services.txt")


def load_expected(path):
    expected = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            case_id, _, reason = line.partition("\t")
            if not reason.strip():
                sys.exit(f"{path}: no reason given for {case_id}")
            expected[case_id] = reason
    return expected


def run_corpus(args, runner, filters, jobs, quiet):
    """The runner's results for the cases matching any of `filters` (all when empty)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "results.json")
        cases = os.path.join(args.corpus, "services", "cases") if args.services else \
            os.path.join(args.corpus, "cases")
        cmd = [sys.executable, runner, "--endpoint", args.endpoint, "--cases", cases,
               "--jobs", str(jobs), "--json-out", out, "--no-progress"]
        if args.services:
            cmd += ["--services-endpoint", args.services_endpoint, "--lambda-stub", args.lambda_stub]
        for f in filters:
            cmd += ["--filter", f]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not quiet:
            print(proc.stdout[-4000:])
        if not os.path.exists(out):
            return None
        with open(out, encoding="utf-8") as fh:
            return json.load(fh)["results"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--corpus", default=DEFAULT_CORPUS)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--min-pass-rate", type=float, default=None,
                    help="minimum pass rate over the topics' execution cases (default 0.90), or "
                         "with --services over the cases moto can serve (default 0.65)")
    ap.add_argument("--write-expected", action="store_true",
                    help="rewrite the expected-failures list from this run (keeps existing reasons)")
    ap.add_argument("--services", action="store_true", help="score the services corpus")
    ap.add_argument("--services-endpoint", help="with --services: the moto server")
    ap.add_argument("--lambda-stub", metavar="HOST:PORT",
                    help="with --services: where the runner serves the cases' Lambda functions")
    args = ap.parse_args()
    if args.services and not (args.services_endpoint and args.lambda_stub):
        ap.error("--services needs --services-endpoint and --lambda-stub")

    runner = os.path.join(args.corpus, "run.py")
    if not os.path.exists(runner):
        print(f"conformance corpus not found at {args.corpus}: skipped")
        return 0
    filters = [] if args.services else [f"cases/{t}/" for t in TOPICS]
    results = run_corpus(args, runner, filters, args.jobs, quiet=False)
    if results is None:
        print("the conformance runner produced no results", file=sys.stderr)
        return 1

    expected_path = EXPECTED_SERVICES if args.services else EXPECTED
    expected = load_expected(expected_path)
    failed = {r["id"]: r for r in results if r["status"] != "passed"}
    passed = {r["id"] for r in results if r["status"] == "passed"}
    if args.services:
        # moto answers the gap cases unlike AWS: reported, never a regression.
        gaps = {r["id"] for r in results if r.get("service_emulator_gap")}
        failed = {k: v for k, v in failed.items() if k not in gaps}
        exec_results = [r for r in results if r["id"] not in gaps]
        rate_label = "cases moto can serve (service_emulator_gaps apart)"
        # A floor under today's 108/155: issue 14 asks for 95%, which needs the gaps listed in the
        # expected failures fixed (most remaining cases fail only on moto's own HTTP headers).
        min_rate = 0.65 if args.min_pass_rate is None else args.min_pass_rate
    else:
        exec_results = [r for r in results
                        if r.get("kind", "execution") == "execution" and r.get("topic") in RATE_TOPICS]
        rate_label = f"execution cases of {', '.join(RATE_TOPICS)}"
        min_rate = 0.90 if args.min_pass_rate is None else args.min_pass_rate

    if args.write_expected:
        with open(expected_path, "w", encoding="utf-8") as fh:
            what = "Services-corpus cases" if args.services else "Conformance cases"
            fh.write(f"# {what} stepwise is known to fail, with the reason. One per line: id<TAB>reason.\n")
            if args.services:
                fh.write("# Each reason is one of: moto differs from AWS (how), AWS changed since the recording, the recording is\n"
                         "# unreliable, or a stepwise gap not fixed yet (to shrink). service_emulator_gaps cases are counted apart.\n"
                         "# Regenerate with: python3 scripts/conformance.py --services ... --write-expected (reasons are kept).\n")
            else:
                fh.write("# Regenerate with: python3 scripts/conformance.py --endpoint URL --write-expected (reasons are kept).\n")
            for case_id in sorted(failed):
                reason = expected.get(case_id) or failed[case_id].get("reason", "").replace("\n", " ")[:200]
                fh.write(f"{case_id}\t{reason or 'unexplained'}\n")

    unexpected = sorted(set(failed) - set(expected))
    if args.services and unexpected:
        # A case whose Lambda sleeps past its task's timeout has failed on a server that had run
        # the corpus just before: an unlisted failure is run once more alone before it counts.
        again = run_corpus(args, runner, unexpected, 1, quiet=True) or []
        for r in again:
            if r["id"] in failed and r["status"] == "passed":
                print(f"flaky (failed under load, passed alone): {r['id']}")
                del failed[r["id"]]
                passed.add(r["id"])
                for i, old in enumerate(exec_results):
                    if old["id"] == r["id"]:
                        exec_results[i] = r
        unexpected = sorted(set(failed) - set(expected))
    fixed = sorted(set(expected) & passed)
    total = len(results)
    what = "services corpus" if args.services else ", ".join(TOPICS)
    print(f"stepwise conformance ({what}): {len(passed)} passed, {len(failed)} failed of {total}")
    if args.services:
        print(f"service_emulator_gaps cases failing (counted apart): {len(gaps)}")
    exec_pass = sum(1 for r in exec_results if r["status"] == "passed")
    rate = exec_pass / len(exec_results) if exec_results else 1.0
    print(f"{rate_label}: {exec_pass}/{len(exec_results)} ({rate:.1%})")
    for case_id in fixed:
        print(f"now passing (remove from the expected-failures list): {case_id}")
    for case_id in unexpected:
        r = failed[case_id]
        why = r.get("reason") or "; ".join(r.get("diffs", [])[:3])
        print(f"UNEXPECTED FAILURE: {case_id}: {why[:600]}")
    if unexpected:
        return 1
    if rate < min_rate:
        print(f"pass rate {rate:.1%} is below {min_rate:.0%}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
