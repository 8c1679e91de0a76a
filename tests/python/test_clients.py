#!/usr/bin/env python3
"""boto3 and the AWS CLI against a running stepwise server.

The endpoint comes from STEPWISE_ENDPOINT (e.g. http://127.0.0.1:8083). The server should run
with a small --wait-time-scale (the machines wait at most 1 s unscaled, 1 h for the one that is
stopped). Plain Python with asserts: exits non-zero on the first failure and prints each check.

    STEPWISE_ENDPOINT=http://127.0.0.1:8083 python3 tests/python/test_clients.py
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

# Pass -> Choice -> Wait -> Succeed
FLOW = {
    "StartAt": "Init",
    "States": {
        "Init": {"Type": "Pass", "Result": {"n": 3}, "ResultPath": "$.init", "Next": "Route"},
        "Route": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.init.n", "NumericGreaterThan": 2, "Next": "Pause"}],
            "Default": "Nope",
        },
        "Pause": {"Type": "Wait", "Seconds": 1, "Next": "Done"},
        "Nope": {"Type": "Fail", "Error": "Wrong", "Cause": "default branch"},
        "Done": {"Type": "Succeed"},
    },
}
FLOW_EVENTS = [
    "ExecutionStarted",
    "PassStateEntered",
    "PassStateExited",
    "ChoiceStateEntered",
    "ChoiceStateExited",
    "WaitStateEntered",
    "WaitStateExited",
    "SucceedStateEntered",
    "SucceedStateExited",
    "ExecutionSucceeded",
]
LONG_WAIT = {"StartAt": "Long", "States": {"Long": {"Type": "Wait", "Seconds": 3600, "End": True}}}
EXPRESS = {
    "StartAt": "Add",
    "States": {"Add": {"Type": "Pass", "Parameters": {"total.$": "States.MathAdd($.a, 1)"}, "End": True}},
}

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


# ---------------------------------------------------------------------------
# boto3
# ---------------------------------------------------------------------------


def boto3_client(region="us-east-1"):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "stepfunctions",
        endpoint_url=ENDPOINT,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        # StartSyncExecution has the host prefix "sync-", which a loopback endpoint cannot take.
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
    )


def wait_done(describe, arn):
    deadline = time.time() + DEADLINE_S
    while True:
        d = describe(arn)
        if d["status"] != "RUNNING":
            return d
        if time.time() > deadline:
            fail(f"{arn} still RUNNING after {DEADLINE_S}s")
        time.sleep(0.05)


def boto3_suite():
    from botocore.exceptions import ClientError

    sfn = boto3_client()
    suffix = uuid.uuid4().hex[:8]
    name = f"boto3-flow-{suffix}"

    created = sfn.create_state_machine(name=name, definition=json.dumps(FLOW), roleArn=ROLE_ARN)
    sm = created["stateMachineArn"]
    check(sm.endswith(f":stateMachine:{name}") and sm.startswith("arn:aws:states:us-east-1:"),
          "boto3 create_state_machine returns the ARN", sm)
    check(isinstance(created["creationDate"], datetime.datetime),
          "boto3 parses creationDate as a datetime", created["creationDate"])

    d = sfn.describe_state_machine(stateMachineArn=sm)
    check(d["name"] == name and d["status"] == "ACTIVE" and d["type"] == "STANDARD",
          "boto3 describe_state_machine name/status/type", d)
    check(json.loads(d["definition"]) == FLOW, "boto3 describe_state_machine definition")
    check(d["roleArn"] == ROLE_ARN, "boto3 describe_state_machine roleArn")

    listed = sfn.list_state_machines()["stateMachines"]
    check(any(m["stateMachineArn"] == sm for m in listed), "boto3 list_state_machines contains it")

    paginator = sfn.get_paginator("list_state_machines")
    names = [m["name"] for page in paginator.paginate(PaginationConfig={"PageSize": 1}) for m in page["stateMachines"]]
    check(name in names and len(names) == len(set(names)), "boto3 list_state_machines paginator (page size 1)", names)

    started = sfn.start_execution(stateMachineArn=sm, name="run-1", input=json.dumps({"x": 1}))
    exec_arn = started["executionArn"]
    check(exec_arn.endswith(f":execution:{name}:run-1"), "boto3 start_execution ARN", exec_arn)
    check(isinstance(started["startDate"], datetime.datetime), "boto3 parses startDate")

    d = wait_done(lambda a: sfn.describe_execution(executionArn=a), exec_arn)
    check(d["status"] == "SUCCEEDED", "boto3 execution SUCCEEDED", d)
    check(json.loads(d["output"]) == {"x": 1, "init": {"n": 3}}, "boto3 describe_execution output", d.get("output"))
    check(d["stopDate"] >= d["startDate"], "boto3 stopDate >= startDate")

    events = sfn.get_execution_history(executionArn=exec_arn)["events"]
    types = [e["type"] for e in events]
    check(types == FLOW_EVENTS, "boto3 get_execution_history event types", types)
    check([e["id"] for e in events] == list(range(1, 11)), "boto3 history ids 1..10")
    check(events[1]["previousEventId"] == 0 and events[2]["previousEventId"] == 2,
          "boto3 history previousEventId", [e["previousEventId"] for e in events])
    check(all(isinstance(e["timestamp"], datetime.datetime) for e in events), "boto3 parses event timestamps")

    rev = sfn.get_execution_history(executionArn=exec_arn, reverseOrder=True, maxResults=4)
    check([e["id"] for e in rev["events"]] == [10, 9, 8, 7] and "nextToken" in rev,
          "boto3 history reverseOrder with maxResults", [e["id"] for e in rev["events"]])
    paged = [e["id"] for page in sfn.get_paginator("get_execution_history").paginate(
        executionArn=exec_arn, PaginationConfig={"PageSize": 3}) for e in page["events"]]
    check(paged == list(range(1, 11)), "boto3 history paginator", paged)

    sme = sfn.describe_state_machine_for_execution(executionArn=exec_arn)
    check(sme["stateMachineArn"] == sm and json.loads(sme["definition"]) == FLOW,
          "boto3 describe_state_machine_for_execution")

    # Stop a long Wait.
    slow_name = f"boto3-slow-{suffix}"
    slow = sfn.create_state_machine(name=slow_name, definition=json.dumps(LONG_WAIT), roleArn=ROLE_ARN)["stateMachineArn"]
    running = sfn.start_execution(stateMachineArn=slow, name="to-stop")["executionArn"]
    check(sfn.describe_execution(executionArn=running)["status"] == "RUNNING", "boto3 long Wait is RUNNING")
    stopped = sfn.stop_execution(executionArn=running, error="Manual", cause="test")
    check(isinstance(stopped["stopDate"], datetime.datetime), "boto3 stop_execution stopDate")
    d = sfn.describe_execution(executionArn=running)
    check(d["status"] == "ABORTED", "boto3 stopped execution is ABORTED", d)
    types = [e["type"] for e in sfn.get_execution_history(executionArn=running)["events"]]
    check(types[-1] == "ExecutionAborted", "boto3 history ends with ExecutionAborted", types)

    # List executions with a status filter.
    aborted = sfn.list_executions(stateMachineArn=slow, statusFilter="ABORTED")["executions"]
    check([e["executionArn"] for e in aborted] == [running], "boto3 list_executions statusFilter=ABORTED", aborted)
    succeeded = sfn.list_executions(stateMachineArn=sm, statusFilter="SUCCEEDED")["executions"]
    check([e["name"] for e in succeeded] == ["run-1"], "boto3 list_executions statusFilter=SUCCEEDED", succeeded)
    check(sfn.list_executions(stateMachineArn=sm, statusFilter="RUNNING")["executions"] == [],
          "boto3 list_executions statusFilter=RUNNING is empty")

    # Idempotent start and ExecutionAlreadyExists.
    again = sfn.start_execution(stateMachineArn=slow, name="idem", input="{}")["executionArn"]
    same = sfn.start_execution(stateMachineArn=slow, name="idem", input="{}")["executionArn"]
    check(again == same, "boto3 start_execution is idempotent while running")
    try:
        sfn.start_execution(stateMachineArn=slow, name="idem", input='{"other": 1}')
        fail("boto3 start_execution with the same name and other input succeeded")
    except sfn.exceptions.ExecutionAlreadyExists:
        ok("boto3 ExecutionAlreadyExists is a modeled exception")
    sfn.stop_execution(executionArn=again)

    # Express, synchronously.
    express = sfn.create_state_machine(name=f"boto3-express-{suffix}", definition=json.dumps(EXPRESS),
                                       roleArn=ROLE_ARN, type="EXPRESS")["stateMachineArn"]
    r = sfn.start_sync_execution(stateMachineArn=express, input=json.dumps({"a": 41}))
    check(r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"total": 42},
          "boto3 start_sync_execution output", r)

    # Tags.
    sfn.tag_resource(resourceArn=sm, tags=[{"key": "team", "value": "core"}, {"key": "env", "value": "ci"}])
    sfn.untag_resource(resourceArn=sm, tagKeys=["env"])
    tags = sfn.list_tags_for_resource(resourceArn=sm)["tags"]
    check(tags == [{"key": "team", "value": "core"}], "boto3 tag/untag/list_tags round trip", tags)

    # Typed errors.
    missing = sm.replace(name, "does-not-exist")
    try:
        sfn.describe_state_machine(stateMachineArn=missing)
        fail("boto3 describe_state_machine of a missing machine succeeded")
    except sfn.exceptions.StateMachineDoesNotExist as e:
        check(e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, "boto3 StateMachineDoesNotExist (400)")
    try:
        sfn.create_state_machine(name="bad", definition='{"StartAt": "X", "States": {}}', roleArn=ROLE_ARN)
        fail("boto3 create_state_machine with an invalid definition succeeded")
    except sfn.exceptions.InvalidDefinition:
        ok("boto3 InvalidDefinition is a modeled exception")
    try:
        sfn.describe_execution(executionArn="not-an-arn")
        fail("boto3 describe_execution of a malformed ARN succeeded")
    except sfn.exceptions.InvalidArn:
        ok("boto3 InvalidArn is a modeled exception")
    # Activities: either implemented (then they round-trip) or a clean UnsupportedOperation.
    try:
        act = sfn.create_activity(name=f"worker-{suffix}")["activityArn"]
        check(act.endswith(f":activity:worker-{suffix}"), "boto3 create_activity", act)
        check(sfn.describe_activity(activityArn=act)["name"] == f"worker-{suffix}", "boto3 describe_activity")
        sfn.delete_activity(activityArn=act)
        ok("boto3 delete_activity")
    except ClientError as e:
        code = e.response["Error"]["Code"]
        check(code == "UnsupportedOperation" and "CreateActivity" in e.response["Error"]["Message"],
              "boto3 sees UnsupportedOperation for create_activity", e.response["Error"])
    # An operation the server does not implement (yet) surfaces as a ClientError naming it.
    try:
        sfn.list_state_machine_versions(stateMachineArn=sm)
        ok("boto3 list_state_machine_versions is implemented")
    except ClientError as e:
        err = e.response["Error"]
        check(err["Code"] == "UnsupportedOperation" and "ListStateMachineVersions" in err["Message"]
              and e.response["ResponseMetadata"]["HTTPStatusCode"] == 400,
              "boto3 sees UnsupportedOperation (400) naming list_state_machine_versions", err)
    rid = sfn.list_state_machines()["ResponseMetadata"].get("RequestId")
    check(bool(rid), "boto3 reads the request id", rid)

    # Region from the signature.
    eu = boto3_client("eu-west-1")
    eu_arn = eu.create_state_machine(name=f"boto3-eu-{suffix}", definition=json.dumps(EXPRESS),
                                     roleArn=ROLE_ARN)["stateMachineArn"]
    check(":eu-west-1:" in eu_arn, "boto3 in eu-west-1 creates an eu-west-1 ARN", eu_arn)

    # Delete.
    sfn.delete_state_machine(stateMachineArn=sm)
    try:
        sfn.describe_state_machine(stateMachineArn=sm)
        fail("boto3 describe_state_machine after delete succeeded")
    except sfn.exceptions.StateMachineDoesNotExist:
        ok("boto3 delete_state_machine removes it")


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
        # start-sync-execution's "sync-" host prefix cannot go in front of 127.0.0.1.
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
    name = f"cli-flow-{suffix}"
    _, created, _ = aws("create-state-machine", "--name", name, "--definition", json.dumps(FLOW),
                        "--role-arn", ROLE_ARN)
    sm = created["stateMachineArn"]
    check(sm.endswith(f":stateMachine:{name}"), "cli create-state-machine", sm)

    _, d, _ = aws("describe-state-machine", "--state-machine-arn", sm)
    check(d["name"] == name and json.loads(d["definition"]) == FLOW, "cli describe-state-machine")

    _, listed, _ = aws("list-state-machines")
    check(any(m["name"] == name for m in listed["stateMachines"]), "cli list-state-machines contains it")

    _, started, _ = aws("start-execution", "--state-machine-arn", sm, "--name", "cli-run",
                        "--input", json.dumps({"x": 2}))
    exec_arn = started["executionArn"]
    check(exec_arn.endswith(f":execution:{name}:cli-run"), "cli start-execution", exec_arn)

    d = wait_done(lambda a: aws("describe-execution", "--execution-arn", a)[1], exec_arn)
    check(d["status"] == "SUCCEEDED" and json.loads(d["output"]) == {"x": 2, "init": {"n": 3}},
          "cli describe-execution SUCCEEDED with output", d)

    _, h, _ = aws("get-execution-history", "--execution-arn", exec_arn)
    types = [e["type"] for e in h["events"]]
    check(types == FLOW_EVENTS, "cli get-execution-history", types)
    _, h, _ = aws("get-execution-history", "--execution-arn", exec_arn, "--reverse-order",
                  "--no-include-execution-data")
    check([e["id"] for e in h["events"]] == list(range(10, 0, -1)), "cli get-execution-history --reverse-order")
    check("input" not in h["events"][-1]["executionStartedEventDetails"],
          "cli --no-include-execution-data leaves input out", h["events"][-1])
    # The CLI paginates by itself: page size 3 must still give all 10 events.
    _, h, _ = aws("get-execution-history", "--execution-arn", exec_arn, "--page-size", "3")
    check([e["id"] for e in h["events"]] == list(range(1, 11)), "cli get-execution-history --page-size 3")

    _, slow, _ = aws("create-state-machine", "--name", f"cli-slow-{suffix}", "--definition",
                     json.dumps(LONG_WAIT), "--role-arn", ROLE_ARN)
    _, running, _ = aws("start-execution", "--state-machine-arn", slow["stateMachineArn"])
    _, stopped, _ = aws("stop-execution", "--execution-arn", running["executionArn"], "--error", "Manual",
                        "--cause", "cli test")
    check("stopDate" in stopped, "cli stop-execution", stopped)
    _, d, _ = aws("describe-execution", "--execution-arn", running["executionArn"])
    check(d["status"] == "ABORTED", "cli stopped execution is ABORTED", d)

    _, ex, _ = aws("list-executions", "--state-machine-arn", slow["stateMachineArn"], "--status-filter", "ABORTED")
    check([e["executionArn"] for e in ex["executions"]] == [running["executionArn"]],
          "cli list-executions --status-filter ABORTED", ex)
    _, ex, _ = aws("list-executions", "--state-machine-arn", sm)
    check([e["name"] for e in ex["executions"]] == ["cli-run"], "cli list-executions", ex)

    _, express, _ = aws("create-state-machine", "--name", f"cli-express-{suffix}", "--definition",
                        json.dumps(EXPRESS), "--role-arn", ROLE_ARN, "--type", "EXPRESS")
    _, r, _ = aws("start-sync-execution", "--state-machine-arn", express["stateMachineArn"], "--input",
                  json.dumps({"a": 1}))
    check(r["status"] == "SUCCEEDED" and json.loads(r["output"]) == {"total": 2}, "cli start-sync-execution", r)

    rc, _, err = aws("describe-state-machine", "--state-machine-arn", sm.replace(name, "missing"), expect_ok=False)
    check(rc != 0 and "StateMachineDoesNotExist" in err, "cli reports StateMachineDoesNotExist", (rc, err))
    rc, _, err = aws("create-state-machine", "--name", "bad-cli", "--definition", "{", "--role-arn", ROLE_ARN,
                     expect_ok=False)
    check(rc != 0 and "InvalidDefinition" in err, "cli reports InvalidDefinition", (rc, err))

    aws("delete-state-machine", "--state-machine-arn", sm)
    _, listed, _ = aws("list-state-machines")
    check(all(m["name"] != name for m in listed["stateMachines"]), "cli delete-state-machine")


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
