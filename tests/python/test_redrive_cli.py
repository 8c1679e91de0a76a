#!/usr/bin/env python3
"""RedriveExecution through boto3 and the AWS CLI (`aws stepfunctions redrive-execution`).

The endpoint comes from STEPWISE_ENDPOINT (e.g. http://127.0.0.1:8083); the server should run
with a small --wait-time-scale (the machines wait at most 1 s unscaled, 1 h for the one that is
left running). Plain Python with asserts: exits non-zero on the first failure and prints each
check. Run from the Rust test `redrive.rs` (boto3_and_aws_cli_redrive), or by hand:

    STEPWISE_ENDPOINT=http://127.0.0.1:8083 python3 tests/python/test_redrive_cli.py

Specification: shared/docs/redrive.md. Checks resting on one of its guesses say so (guess).
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

ENDPOINT = os.environ.get("STEPWISE_ENDPOINT")
ROLE_ARN = "arn:aws:iam::123456789012:role/stepwise-test"
DEADLINE_S = 20
SUCCEEDED_REASON = "Execution is SUCCEEDED and cannot be redriven"
RUNNING_REASON = "Execution is RUNNING and cannot be redriven"

# $$.Execution.RedriveTime exists only after a redrive: Ctx fails on the first attempt and
# succeeds on every redrive.
CTX = {
    "Type": "Pass",
    "Parameters": {"count.$": "$$.Execution.RedriveCount", "time.$": "$$.Execution.RedriveTime"},
    "ResultPath": "$.ctx",
    "Next": "Done",
}
FAILS_UNTIL_REDRIVEN = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Result": 1, "ResultPath": "$.prepared", "Next": "Ctx"},
        "Ctx": CTX,
        "Done": {"Type": "Succeed"},
    },
}
ALWAYS_FAILS = {
    "StartAt": "Prepare",
    "States": {
        "Prepare": {"Type": "Pass", "Next": "Broken"},
        "Broken": {"Type": "Fail", "Error": "Nope", "Cause": "always fails"},
    },
}
LONG_WAIT = {"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 3600, "End": True}}}

CHECKS = 0


def ok(what):
    global CHECKS
    CHECKS += 1
    print(f"ok {CHECKS}: {what}", flush=True)


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def check(condition, what, detail=""):
    if not condition:
        fail(f"{what}{': ' + str(detail) if detail != '' else ''}")
    ok(what)


def wait_done(describe, arn):
    deadline = time.time() + DEADLINE_S
    while True:
        d = describe(arn)
        if d["status"] != "RUNNING":
            return d
        if time.time() > deadline:
            fail(f"{arn} still RUNNING after {DEADLINE_S}s")
        time.sleep(0.05)


def history_well_formed(events):
    """Ids 1..n without gaps; every terminal event but the last is followed by ExecutionRedriven."""
    ids = [e["id"] for e in events]
    if ids != list(range(1, len(events) + 1)):
        return f"ids {ids}"
    terminal = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
    types = [e["type"] for e in events]
    for i, t in enumerate(types[:-1]):
        if t in terminal and types[i + 1] != "ExecutionRedriven":
            return f"{t} at id {i + 1} followed by {types[i + 1]}"
    return None


# ---------------------------------------------------------------------------
# boto3
# ---------------------------------------------------------------------------


def boto3_client():
    import boto3
    from botocore.config import Config

    return boto3.client(
        "stepfunctions",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )


def boto3_suite():
    from botocore.exceptions import ClientError

    sfn = boto3_client()
    suffix = uuid.uuid4().hex[:8]
    describe = lambda a: sfn.describe_execution(executionArn=a)  # noqa: E731

    sm = sfn.create_state_machine(name=f"py-redrive-{suffix}", definition=json.dumps(FAILS_UNTIL_REDRIVEN),
                                  roleArn=ROLE_ARN)["stateMachineArn"]
    exec_arn = sfn.start_execution(stateMachineArn=sm, name="first", input=json.dumps({"k": 1}))["executionArn"]
    other = sfn.start_execution(stateMachineArn=sm, name="second", input="{}")["executionArn"]
    d = wait_done(describe, exec_arn)
    wait_done(describe, other)
    check(d["status"] == "FAILED" and d["error"] == "States.Runtime", "boto3: the first attempt FAILED", d)
    check(d["redriveCount"] == 0 and d["redriveStatus"] == "REDRIVABLE" and "redriveStatusReason" not in d
          and "redriveDate" not in d, "boto3: a FAILED execution is REDRIVABLE, redriveCount 0, no reason", d)

    r1 = sfn.redrive_execution(executionArn=exec_arn, clientToken="py-token-1")
    check(isinstance(r1["redriveDate"], datetime.datetime), "boto3: redrive_execution returns redriveDate", r1)
    r2 = sfn.redrive_execution(executionArn=exec_arn, clientToken="py-token-1")
    check(r2["redriveDate"] == r1["redriveDate"], "boto3: the same clientToken answers the same redriveDate",
          (r1["redriveDate"], r2["redriveDate"]))

    d = wait_done(describe, exec_arn)
    check(d["status"] == "SUCCEEDED", "boto3: the redriven execution SUCCEEDED", d)
    out = json.loads(d["output"])
    check(out["ctx"]["count"] == 1 and out["prepared"] == 1, "boto3: $$.Execution.RedriveCount is 1", out)
    check(d["redriveCount"] == 1 and d["redriveDate"] == r1["redriveDate"],
          "boto3: describe_execution redriveCount 1 and redriveDate", d)
    check(d["redriveStatus"] == "NOT_REDRIVABLE" and d["redriveStatusReason"] == SUCCEEDED_REASON,
          "boto3: SUCCEEDED after redrive is NOT_REDRIVABLE", d)

    events = sfn.get_execution_history(executionArn=exec_arn)["events"]
    types = [e["type"] for e in events]
    problem = history_well_formed(events)
    check(problem is None, "boto3: history ids contiguous across the redrive", problem)
    redriven = [e for e in events if e["type"] == "ExecutionRedriven"]
    check(len(redriven) == 1 and redriven[0]["executionRedrivenEventDetails"]["redriveCount"] == 1,
          "boto3: one ExecutionRedriven with redriveCount 1", types)
    check(types.count("PassStateEntered") == 3, "boto3: Prepare ran once, Ctx twice (entered 1 + 2)", types)
    after = events[events.index(redriven[0]) + 1]
    entered_before = [e for e in events[:events.index(redriven[0])]
                      if e["type"] == "PassStateEntered" and e["stateEnteredEventDetails"]["name"] == "Ctx"][-1]
    check(after["type"] == "PassStateEntered"
          and after["stateEnteredEventDetails"] == entered_before["stateEnteredEventDetails"],
          "boto3: (guess) the redrive re-enters Ctx with its recorded input", after)

    # Errors as modeled exceptions.
    try:
        sfn.redrive_execution(executionArn=exec_arn)
        fail("boto3: redriving a SUCCEEDED execution succeeded")
    except sfn.exceptions.ExecutionNotRedrivable as e:
        check(e.response["Error"]["Message"] == SUCCEEDED_REASON
              and e.response["ResponseMetadata"]["HTTPStatusCode"] == 400,
              "boto3: ExecutionNotRedrivable (400) for SUCCEEDED", e.response["Error"])
    missing = exec_arn.replace(":first", ":never-started")
    try:
        sfn.redrive_execution(executionArn=missing)
        fail("boto3: redriving an unknown execution succeeded")
    except sfn.exceptions.ExecutionDoesNotExist:
        ok("boto3: ExecutionDoesNotExist for an unknown execution")
    try:
        sfn.redrive_execution(executionArn="abc")
        fail("boto3: redriving 'abc' succeeded")
    except sfn.exceptions.InvalidArn:
        ok("boto3: InvalidArn for 'abc'")
    try:
        sfn.redrive_execution(executionArn=other, clientToken="t" * 65)
        fail("boto3: a 65-character clientToken was accepted")
    except ClientError as e:
        check(e.response["Error"]["Code"] == "ValidationException",
              "boto3: ValidationException for a 65-character clientToken", e.response["Error"])
    check(describe(other)["redriveCount"] == 0, "boto3: the refused redrive changed nothing")

    # A redrive without a token (boto3 generates one), and a second one while it runs.
    slow = sfn.create_state_machine(name=f"py-slow-{suffix}", definition=json.dumps({
        "StartAt": "Ctx", "States": {"Ctx": dict(CTX, Next="Long"), **LONG_WAIT["States"]}}),
        roleArn=ROLE_ARN)["stateMachineArn"]
    held = sfn.start_execution(stateMachineArn=slow, input="{}")["executionArn"]
    wait_done(describe, held)
    sfn.redrive_execution(executionArn=held)
    try:
        sfn.redrive_execution(executionArn=held)
        fail("boto3: redriving a RUNNING execution succeeded")
    except sfn.exceptions.ExecutionNotRedrivable as e:
        check(e.response["Error"]["Message"] == RUNNING_REASON, "boto3: ExecutionNotRedrivable while RUNNING",
              e.response["Error"])
    sfn.stop_execution(executionArn=held)

    # ListExecutions redriveFilter.
    listed = sfn.list_executions(stateMachineArn=sm, redriveFilter="REDRIVEN")["executions"]
    check([e["executionArn"] for e in listed] == [exec_arn], "boto3: list_executions redriveFilter=REDRIVEN", listed)
    check(listed[0]["redriveCount"] == 1 and listed[0]["redriveDate"] == r1["redriveDate"],
          "boto3: list items carry redriveCount and redriveDate", listed[0])
    listed = sfn.list_executions(stateMachineArn=sm, redriveFilter="NOT_REDRIVEN")["executions"]
    check([e["executionArn"] for e in listed] == [other], "boto3: list_executions redriveFilter=NOT_REDRIVEN",
          listed)


# ---------------------------------------------------------------------------
# AWS CLI
# ---------------------------------------------------------------------------


def cli_env():
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
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    })
    env.pop("AWS_PROFILE", None)
    env.pop("AWS_SESSION_TOKEN", None)
    return env


def aws(*args, expect_ok=True):
    """Runs `aws stepfunctions ARGS --endpoint-url ... --output json`; returns (rc, json|None, stderr)."""
    cmd = ["aws", "stepfunctions", *args, "--endpoint-url", ENDPOINT, "--output", "json"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=cli_env(), timeout=60)
    if expect_ok and p.returncode != 0:
        fail(f"`{' '.join(cmd)}` exited {p.returncode}: {p.stderr.strip()}")
    out = json.loads(p.stdout) if p.stdout.strip() else None
    return p.returncode, out, p.stderr


def cli_suite():
    suffix = uuid.uuid4().hex[:8]
    describe = lambda a: aws("describe-execution", "--execution-arn", a)[1]  # noqa: E731

    # A Fail state fails again on redrive.
    _, created, _ = aws("create-state-machine", "--name", f"cli-fails-{suffix}", "--definition",
                        json.dumps(ALWAYS_FAILS), "--role-arn", ROLE_ARN)
    _, started, _ = aws("start-execution", "--state-machine-arn", created["stateMachineArn"], "--name", "cli-bad")
    arn = started["executionArn"]
    d = wait_done(describe, arn)
    check(d["status"] == "FAILED" and d["redriveStatus"] == "REDRIVABLE", "cli: FAILED and REDRIVABLE", d)

    _, r1, _ = aws("redrive-execution", "--execution-arn", arn, "--client-token", "cli-token-1")
    check(isinstance(r1, dict) and "redriveDate" in r1, "cli: redrive-execution prints redriveDate", r1)
    _, r2, _ = aws("redrive-execution", "--execution-arn", arn, "--client-token", "cli-token-1")
    check(r2["redriveDate"] == r1["redriveDate"], "cli: the same --client-token answers the same redriveDate",
          (r1, r2))
    d = wait_done(describe, arn)
    check(d["status"] == "FAILED" and d["error"] == "Nope" and d["redriveCount"] == 1,
          "cli: the Fail state failed again, redriveCount 1", d)
    _, h, _ = aws("get-execution-history", "--execution-arn", arn)
    types = [e["type"] for e in h["events"]]
    check(types.count("ExecutionRedriven") == 1 and types.count("FailStateEntered") == 2
          and types.count("PassStateEntered") == 1 and types[-1] == "ExecutionFailed",
          "cli: history shows one ExecutionRedriven, Fail entered twice, Pass once", types)
    problem = history_well_formed(h["events"])
    check(problem is None, "cli: history ids contiguous across the redrive", problem)

    # A second redrive.
    aws("redrive-execution", "--execution-arn", arn)
    d = wait_done(describe, arn)
    check(d["status"] == "FAILED" and d["redriveCount"] == 2, "cli: second redrive, redriveCount 2", d)
    _, h, _ = aws("get-execution-history", "--execution-arn", arn, "--reverse-order", "--max-items", "3")
    check([e["type"] for e in h["events"]] == ["ExecutionFailed", "FailStateEntered", "ExecutionRedriven"]
          and h["events"][2]["executionRedrivenEventDetails"]["redriveCount"] == 2,
          "cli: (guess) the latest events: ExecutionRedriven (2), FailStateEntered, ExecutionFailed",
          [e["type"] for e in h["events"]])

    # A redriven execution that succeeds, then the errors.
    _, created, _ = aws("create-state-machine", "--name", f"cli-ctx-{suffix}", "--definition",
                        json.dumps(FAILS_UNTIL_REDRIVEN), "--role-arn", ROLE_ARN)
    sm = created["stateMachineArn"]
    _, started, _ = aws("start-execution", "--state-machine-arn", sm, "--name", "cli-ctx")
    good = started["executionArn"]
    wait_done(describe, good)
    aws("redrive-execution", "--execution-arn", good)
    d = wait_done(describe, good)
    check(d["status"] == "SUCCEEDED" and d["redriveCount"] == 1 and "redriveDate" in d,
          "cli: the redriven execution SUCCEEDED", d)
    _, listed, _ = aws("list-executions", "--state-machine-arn", sm, "--redrive-filter", "REDRIVEN")
    check([e["executionArn"] for e in listed["executions"]] == [good] and listed["executions"][0]["redriveCount"] == 1,
          "cli: list-executions --redrive-filter REDRIVEN", listed)
    _, listed, _ = aws("list-executions", "--state-machine-arn", sm, "--redrive-filter", "NOT_REDRIVEN")
    check(listed["executions"] == [], "cli: list-executions --redrive-filter NOT_REDRIVEN is empty", listed)

    cases = [
        ("SUCCEEDED execution", ["--execution-arn", good], ["ExecutionNotRedrivable", SUCCEEDED_REASON]),
        ("unknown execution", ["--execution-arn", good.replace(":cli-ctx", ":nobody")], ["ExecutionDoesNotExist"]),
        ("'abc'", ["--execution-arn", "abc"], ["InvalidArn"]),
        ("65-character token", ["--execution-arn", arn, "--client-token", "t" * 65], ["ValidationException"]),
        ("token with a space", ["--execution-arn", arn, "--client-token", "a b"], ["ValidationException"]),
    ]
    for what, args, needles in cases:
        rc, _, err = aws("redrive-execution", *args, expect_ok=False)
        check(rc != 0 and all(n in err for n in needles), f"cli: redrive-execution of {what} reports {needles}",
              (rc, err.strip()))
    check(describe(arn)["redriveCount"] == 2, "cli: the refused redrives changed nothing")


def main():
    if not ENDPOINT:
        fail("set STEPWISE_ENDPOINT to the server's URL, e.g. http://127.0.0.1:8083")
    try:
        import boto3  # noqa: F401
    except ImportError:
        fail("boto3 is not installed for this python3 (pip install boto3); it is required")
    if shutil.which("aws") is None:
        fail("the AWS CLI (`aws`) is not on PATH; it is required")
    print(f"stepwise endpoint: {ENDPOINT}", flush=True)
    boto3_suite()
    cli_suite()
    print(f"all {CHECKS} checks passed", flush=True)


if __name__ == "__main__":
    main()
