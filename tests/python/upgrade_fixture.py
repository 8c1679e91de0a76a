#!/usr/bin/env python3
"""The upgrade fixture: a database written by an older build, read and finished by this one.

`prepare` (run by hand against the OLD build, see tests/upgrade/README.md) leaves a store with
executions in every resting shape: waiting on a timer, on an activity task, on a Retry backoff,
inside a Parallel and an inline Map, in a Distributed Map whose Map Run has finished and open
children, plus closed ones (succeeded, failed and redrivable), a published version and an alias.

Both take the path of the fixture's task tokens (`FIXTURE.tokens.json`): the tokens of the
tasks workers took from the old build and never answered.

`finish` (run by the black-box test `upgrade.rs` against THIS build, started on a
copy of that database) works every open execution to its end with activity workers, redrives
the failed ones, and checks every result and history. Plain Python with asserts.

    STEPWISE_ENDPOINT=http://127.0.0.1:8083 python3 tests/python/upgrade_fixture.py prepare tests/upgrade/DATE-COMMIT.tokens.json
"""

import json
import os
import sys
import time

import boto3

ENDPOINT = os.environ.get("STEPWISE_ENDPOINT")
ACCOUNT = "123456789012"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/stepwise-test"
SM = f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:"
ACTIVITY = f"arn:aws:states:us-east-1:{ACCOUNT}:activity:upgrade-worker"
DEADLINE_S = 30


def task(next_or_end, **extra):
    # The longest timeout AWS allows: the tokens kept with the fixture stay valid for years.
    state = {"Type": "Task", "Resource": ACTIVITY, "TimeoutSeconds": 99999999, **extra}
    state.update(next_or_end)
    return state


MACHINES = {
    "timer": {
        "StartAt": "Sleep",
        "States": {
            "Sleep": {"Type": "Wait", "Seconds": 30, "Next": "After"},
            "After": {"Type": "Pass", "Result": "woke", "ResultPath": "$.after", "End": True},
        },
    },
    "activity": {
        "StartAt": "Work",
        "States": {"Work": task({"End": True}, ResultPath="$.work")},
    },
    "retrying": {
        "StartAt": "Work",
        "States": {
            "Work": task(
                {"End": True},
                Retry=[{"ErrorEquals": ["Flaky"], "IntervalSeconds": 30, "MaxAttempts": 3}],
            )
        },
    },
    "parallel": {
        "StartAt": "Both",
        "States": {
            "Both": {
                "Type": "Parallel",
                "End": True,
                "Branches": [
                    {"StartAt": "Fast", "States": {"Fast": {"Type": "Pass", "Result": "fast", "End": True}}},
                    {"StartAt": "Slow", "States": {"Slow": task({"End": True})}},
                ],
            }
        },
    },
    "inline-map": {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": 2,
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Do",
                    "States": {"Do": task({"End": True})},
                },
                "End": True,
            }
        },
    },
    "distributed-map": {
        "StartAt": "Each",
        "States": {
            "Each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "Label": "Each",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "Do",
                    "States": {"Do": task({"End": True})},
                },
                "End": True,
            }
        },
    },
    "closed": {
        "StartAt": "Echo",
        "States": {"Echo": {"Type": "Pass", "End": True}},
    },
}


def client():
    return boto3.client(
        "stepfunctions",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


CHECKS = 0


def ok(what):
    global CHECKS
    CHECKS += 1
    print(f"ok {CHECKS}: {what}", flush=True)


def wait_status(sfn, arn, statuses):
    deadline = time.time() + DEADLINE_S
    while True:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] in statuses:
            return d
        assert time.time() < deadline, f"{arn} stayed {d['status']}, expected {statuses}"
        time.sleep(0.05)


def take_task(sfn):
    """One activity task (its input, its token), or None when none comes within 1 s."""
    t = sfn.get_activity_task(activityArn=ACTIVITY, workerName="upgrade")
    if not t.get("taskToken"):
        return None
    return json.loads(t["input"]), t["taskToken"]


def prepare(sfn, tokens_path):
    sfn.create_activity(name="upgrade-worker")
    for name, definition in MACHINES.items():
        sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE_ARN)
    version = sfn.publish_state_machine_version(stateMachineArn=SM + "closed", description="v1")
    sfn.create_state_machine_alias(
        name="live",
        routingConfiguration=[{"stateMachineVersionArn": version["stateMachineVersionArn"], "weight": 100}],
    )
    start = lambda sm, name, value: sfn.start_execution(  # noqa: E731
        stateMachineArn=SM + sm, name=name, input=json.dumps(value)
    )["executionArn"]

    closed = start("closed", "succeeded", {"kept": True})
    wait_status(sfn, closed, {"SUCCEEDED"})
    start("timer", "waiting", {"n": 1})
    start("activity", "on-task", {"job": "a"})
    # The Parallel's slow branch fails once: the execution is FAILED and redrivable.
    failed = start("parallel", "failed-branch", {"job": "p"})
    start("retrying", "in-backoff", {"job": "r"})
    start("inline-map", "mid-map", {"items": [{"job": "m0"}, {"job": "m1"}, {"job": "m2"}]})
    start("distributed-map", "map-run", {"items": [{"job": "d0"}, {"job": "d1"}]})

    # Answer some tasks so each execution rests where the docstring says. The tokens of those
    # left in flight are kept beside the fixture: the new build must still accept them.
    answered, in_flight = set(), {}
    deadline = time.time() + DEADLINE_S
    while answered != {"p", "r", "m0", "d0"}:
        assert time.time() < deadline, f"tasks answered so far: {answered}"
        got = take_task(sfn)
        if got is None:
            continue
        value, token = got
        job = value.get("job")
        if job == "p" and "p" not in answered:
            sfn.send_task_failure(taskToken=token, error="Broken", cause="the first attempt fails")
        elif job == "r" and "r" not in answered:
            sfn.send_task_failure(taskToken=token, error="Flaky", cause="retry me")
        elif job in ("m0", "d0") and job not in answered:
            sfn.send_task_success(taskToken=token, output=json.dumps({"done": job}))
        else:
            in_flight[job] = token
            continue
        answered.add(job)
    wait_status(sfn, failed, {"FAILED"})
    with open(tokens_path, "w") as f:
        json.dump(in_flight, f, indent=1, sort_keys=True)
    print(f"prepared ({sorted(in_flight)} in flight): stop the server now (SIGTERM), then see tests/upgrade/README.md")


def finish(sfn, tokens_path):
    executions = {
        e["name"]: e
        for sm in MACHINES
        for e in sfn.list_executions(stateMachineArn=SM + sm)["executions"]
    }
    expected_names = {"succeeded", "waiting", "on-task", "failed-branch", "in-backoff", "mid-map", "map-run"}
    assert expected_names <= set(executions), f"executions read back: {sorted(executions)}"
    ok("every execution the old build wrote is listed")

    succeeded = sfn.describe_execution(executionArn=executions["succeeded"]["executionArn"])
    assert succeeded["status"] == "SUCCEEDED" and json.loads(succeeded["output"]) == {"kept": True}
    ok("a closed execution keeps its output")
    version = sfn.list_state_machine_versions(stateMachineArn=SM + "closed")["stateMachineVersions"]
    aliases = sfn.list_state_machine_aliases(stateMachineArn=SM + "closed")["stateMachineAliases"]
    assert len(version) == 1 and len(aliases) == 1, (version, aliases)
    ok("the version and the alias are read back")

    failed = executions["failed-branch"]["executionArn"]
    d = sfn.describe_execution(executionArn=failed)
    assert d["status"] == "FAILED" and d["redriveStatus"] == "REDRIVABLE", d
    sfn.redrive_execution(executionArn=failed)
    ok("the failed execution is redriven")

    # The tasks workers had taken from the old build are answered with its tokens.
    with open(tokens_path) as f:
        in_flight = json.load(f)
    for job, token in in_flight.items():
        sfn.send_task_success(taskToken=token, output=json.dumps({"done": job}))
    ok(f"the old build's task tokens are accepted ({', '.join(sorted(in_flight))})")

    # Work every task until every execution has ended; each job is answered with its name.
    open_arns = [executions[n]["executionArn"] for n in expected_names - {"succeeded"}]
    deadline = time.time() + DEADLINE_S
    while True:
        statuses = {arn: sfn.describe_execution(executionArn=arn)["status"] for arn in open_arns}
        if all(s != "RUNNING" for s in statuses.values()):
            break
        assert time.time() < deadline, f"still running: {statuses}"
        got = take_task(sfn)
        if got is not None:
            value, token = got
            sfn.send_task_success(taskToken=token, output=json.dumps({"done": value.get("job")}))

    def output(name):
        d = sfn.describe_execution(executionArn=executions[name]["executionArn"])
        assert d["status"] == "SUCCEEDED", (name, d)
        return json.loads(d["output"])

    assert output("waiting") == {"n": 1, "after": "woke"}
    assert output("on-task") == {"job": "a", "work": {"done": "a"}}
    assert output("failed-branch") == ["fast", {"done": "p"}]
    assert output("in-backoff") == {"done": "r"}
    assert output("mid-map") == [{"done": "m0"}, {"done": "m1"}, {"done": "m2"}]
    assert output("map-run") == [{"done": "d0"}, {"done": "d1"}]
    ok("every open execution finished with the expected output")

    for name in expected_names:
        arn = executions[name]["executionArn"]
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        ids = [e["id"] for e in events]
        assert ids == list(range(1, len(ids) + 1)), (name, ids)
        for e in events[1:]:
            assert 0 <= e.get("previousEventId", 0) < e["id"], (name, e)
        assert events[-1]["type"] == "ExecutionSucceeded", (name, events[-1]["type"])
    ok("every history is contiguous and ends in ExecutionSucceeded")
    redriven = [e for e in sfn.get_execution_history(executionArn=failed, maxResults=1000)["events"] if e["type"] == "ExecutionRedriven"]
    assert len(redriven) == 1
    runs = sfn.list_map_runs(executionArn=executions["map-run"]["executionArn"])["mapRuns"]
    assert len(runs) == 1
    run = sfn.describe_map_run(mapRunArn=runs[0]["mapRunArn"])
    assert run["status"] == "SUCCEEDED" and run["itemCounts"]["succeeded"] == 2, run
    ok("the Map Run finished with both items")
    print(f"{CHECKS} checks passed")


def main():
    assert ENDPOINT, "set STEPWISE_ENDPOINT"
    mode, tokens_path = sys.argv[1], sys.argv[2]
    {"prepare": prepare, "finish": finish}[mode](client(), tokens_path)


if __name__ == "__main__":
    main()
