#!/usr/bin/env python3
"""Histories left by stepwise's redrive extensions, read back through boto3 and the AWS CLI.

STEPWISE_ENDPOINT is the server; the arguments are executions that a bulk redrive (or another
extension) redrove. For each, both clients must read a valid
AWS history: ids 1..n, previousEventId chained (0 for ExecutionStarted and the first
…StateEntered, an earlier event for ExecutionRedriven, or the one before the previous after a
Map iteration ends or a Map/Parallel succeeds, as AWS), every terminal event but the last
followed by ExecutionRedriven, redrive counts 1, 2, …, and both clients agreeing. Run from the
Rust test `redrive_extensions.rs`, or by hand:

    STEPWISE_ENDPOINT=http://127.0.0.1:8083 python3 tests/python/test_redrive_extensions.py ARN...
"""

import json
import os
import shutil
import subprocess
import sys

ENDPOINT = os.environ.get("STEPWISE_ENDPOINT")
TERMINAL = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
SKIPPED_BY_NEXT = {"MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted",
                   "MapStateSucceeded", "ParallelStateSucceeded"}
CHECKS = 0


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(condition, what, detail=""):
    global CHECKS
    if not condition:
        fail(f"{what}{': ' + str(detail) if detail != '' else ''}")
    CHECKS += 1
    print(f"ok {CHECKS}: {what}", flush=True)


def problems(events):
    """What makes `events` an invalid AWS history (empty when valid)."""
    out = []
    types = [e["type"] for e in events]
    seen_entered = False
    redrives = 0
    for i, e in enumerate(events):
        t = types[i]
        if e["id"] != i + 1:
            out.append(f"event #{i} ({t}) has id {e['id']}")
        prev = e.get("previousEventId", 0)
        entered = t.endswith("StateEntered")
        if t in ("ExecutionStarted", "ExecutionAborted") or (entered and not seen_entered):
            if prev != 0:
                out.append(f"{t} {e['id']} has previousEventId {prev}, expected 0")
        elif t == "ExecutionRedriven":
            if not 0 < prev < e["id"]:
                out.append(f"ExecutionRedriven {e['id']} has previousEventId {prev}")
            redrives += 1
            count = e.get("executionRedrivenEventDetails", {}).get("redriveCount")
            if count != redrives:
                out.append(f"ExecutionRedriven {e['id']} has redriveCount {count}, expected {redrives}")
            if i == 0 or types[i - 1] not in TERMINAL:
                out.append(f"ExecutionRedriven {e['id']} does not follow a terminal event")
        else:
            # AWS: after a Map iteration ends or a Map/Parallel succeeds, the next event may
            # name the event before that one (the conformance corpus checks exactly when).
            skipped = i > 0 and types[i - 1] in SKIPPED_BY_NEXT and prev == e["id"] - 2
            if prev != e["id"] - 1 and not skipped:
                out.append(f"{t} {e['id']} has previousEventId {prev}, expected {e['id'] - 1}")
        seen_entered |= entered
        if t in TERMINAL and i + 1 < len(events) and types[i + 1] != "ExecutionRedriven":
            out.append(f"{t} {e['id']} is followed by {types[i + 1]}")
    if not types or types[0] != "ExecutionStarted":
        out.append("the history does not start with ExecutionStarted")
    return out


def boto3_history(arn):
    import boto3
    from botocore.config import Config

    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )
    events = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return events


def cli_history(arn):
    env = dict(os.environ)
    env.update({
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_PAGER": "",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
    })
    env.pop("AWS_PROFILE", None)
    cmd = ["aws", "stepfunctions", "get-execution-history", "--execution-arn", arn,
           "--endpoint-url", ENDPOINT, "--output", "json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    if p.returncode != 0:
        fail(f"`{' '.join(cmd)}` exited {p.returncode}: {p.stderr.strip()}")
    return json.loads(p.stdout)["events"]


def main():
    if not ENDPOINT:
        fail("set STEPWISE_ENDPOINT to the server's URL, e.g. http://127.0.0.1:8083")
    arns = sys.argv[1:]
    if not arns:
        fail("name the executions to check as arguments")
    try:
        import boto3  # noqa: F401
    except ImportError:
        fail("boto3 is not installed for this python3 (pip install boto3); it is required")
    if shutil.which("aws") is None:
        fail("the AWS CLI (`aws`) is not on PATH; it is required")
    for arn in arns:
        via_boto3 = boto3_history(arn)
        via_cli = cli_history(arn)
        check(not problems(via_boto3), f"boto3 reads a valid history of {arn}", problems(via_boto3))
        check(not problems(via_cli), f"the AWS CLI reads a valid history of {arn}", problems(via_cli))
        check([e["type"] for e in via_boto3] == [e["type"] for e in via_cli],
              "boto3 and the AWS CLI read the same events")
        check(any(e["type"] == "ExecutionRedriven" for e in via_cli), f"{arn} was redriven")
    print(f"all {CHECKS} checks passed", flush=True)


if __name__ == "__main__":
    main()
