#!/usr/bin/env python3
"""boto3 against a stepwise server started with `--auth sigv4`: signatures are verified and
each access key acts in its own account, whose resources the other account cannot see.

The server's credentials file (written by crates/stepwise/tests/auth.rs) has:
  alice: AKIDALICE / alice-secret in 111111111111
  bob:   AKIDBOB   / bob-secret   in 222222222222
The endpoint comes from STEPWISE_ENDPOINT.
"""

import json
import os
import time

import boto3
import botocore.exceptions
from botocore.config import Config

ENDPOINT = os.environ["STEPWISE_ENDPOINT"]
ROLE = "arn:aws:iam::111111111111:role/r"
WAIT = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}}


def client(key, secret):
    return boto3.client(
        "stepfunctions",
        endpoint_url=ENDPOINT,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 0}),
    )


def error_of(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError(f"{call.__name__} succeeded where it must fail")


def check(what, condition):
    assert condition, what
    print("ok:", what)


alice = client("AKIDALICE", "alice-secret")
bob = client("AKIDBOB", "bob-secret")

mine = alice.create_state_machine(name="orders", definition=json.dumps(WAIT), roleArn=ROLE)
theirs = bob.create_state_machine(name="orders", definition=json.dumps(WAIT), roleArn=ROLE)
check("each account's ARN", ":111111111111:" in mine["stateMachineArn"]
      and ":222222222222:" in theirs["stateMachineArn"])
execution = alice.start_execution(stateMachineArn=mine["stateMachineArn"], name="first")
alice.create_activity(name="work")

listed = [sm["stateMachineArn"] for sm in bob.list_state_machines()["stateMachines"]]
check("bob lists only his state machine", listed == [theirs["stateMachineArn"]])
check("bob lists no activity", bob.list_activities()["activities"] == [])
listed = [sm["stateMachineArn"] for sm in alice.list_state_machines()["stateMachines"]]
check("alice lists only hers", listed == [mine["stateMachineArn"]])

for name, call, kwargs in [
    ("DescribeStateMachine", bob.describe_state_machine, {"stateMachineArn": mine["stateMachineArn"]}),
    ("StartExecution", bob.start_execution, {"stateMachineArn": mine["stateMachineArn"]}),
    ("ListExecutions", bob.list_executions, {"stateMachineArn": mine["stateMachineArn"]}),
    ("DescribeExecution", bob.describe_execution, {"executionArn": execution["executionArn"]}),
    ("StopExecution", bob.stop_execution, {"executionArn": execution["executionArn"]}),
    ("DeleteStateMachine", bob.delete_state_machine, {"stateMachineArn": mine["stateMachineArn"]}),
]:
    code, message = error_of(call, **kwargs)
    check(f"bob's {name} on alice's resource is denied ({code})",
          code == "AccessDeniedException" and name in message)

status = alice.describe_execution(executionArn=execution["executionArn"])["status"]
check("alice's execution untouched", status == "RUNNING")
alice.stop_execution(executionArn=execution["executionArn"])

code, message = error_of(client("AKIDNOBODY", "x").list_state_machines)
check(f"an unknown key is refused ({code}: {message})", code == "UnrecognizedClientException")
code, message = error_of(client("AKIDALICE", "wrong-secret").list_state_machines)
check(f"a wrong secret is refused ({code})", code == "InvalidSignatureException"
      and "does not match" in message)

# A workflow's calls to this server act as its execution's account: alice's workflows cannot
# start, describe or stop bob's executions, take his activity tasks or answer his tokens.
def wait_done(sfn, arn):
    deadline = time.time() + 30
    while time.time() < deadline:
        d = sfn.describe_execution(executionArn=arn)
        if d["status"] != "RUNNING":
            return d
        time.sleep(0.1)
    raise AssertionError(f"{arn} still running")


def one_task(resource, parameters):
    return json.dumps({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}}})


bob_activity = bob.create_activity(name="chores")["activityArn"]
bob_worker = bob.create_state_machine(name="worker", roleArn=ROLE, definition=one_task(
    bob_activity, {}))["stateMachineArn"]
bob_waiting = bob.start_execution(stateMachineArn=bob_worker)["executionArn"]
bob_token = bob.get_activity_task(activityArn=bob_activity)["taskToken"]
alice_child = alice.create_state_machine(name="child", definition=json.dumps(
    {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}), roleArn=ROLE)["stateMachineArn"]

denied_cases = [
    ("states:startExecution", "arn:aws:states:::states:startExecution",
     {"StateMachineArn": theirs["stateMachineArn"]}, "StepFunctions.AccessDeniedException"),
    ("states:startExecution.sync:2", "arn:aws:states:::states:startExecution.sync:2",
     {"StateMachineArn": theirs["stateMachineArn"]}, "StepFunctions.AccessDeniedException"),
    ("sfn:startExecution", "arn:aws:states:::aws-sdk:sfn:startExecution",
     {"StateMachineArn": theirs["stateMachineArn"]}, "Sfn.AccessDeniedException"),
    ("sfn:describeExecution", "arn:aws:states:::aws-sdk:sfn:describeExecution",
     {"ExecutionArn": bob_waiting}, "Sfn.AccessDeniedException"),
    ("sfn:stopExecution", "arn:aws:states:::aws-sdk:sfn:stopExecution",
     {"ExecutionArn": bob_waiting}, "Sfn.AccessDeniedException"),
    ("sfn:getActivityTask", "arn:aws:states:::aws-sdk:sfn:getActivityTask",
     {"ActivityArn": bob_activity}, "Sfn.AccessDeniedException"),
    ("sfn:sendTaskSuccess", "arn:aws:states:::aws-sdk:sfn:sendTaskSuccess",
     {"TaskToken": bob_token, "Output": "{\"by\": \"alice\"}"}, "Sfn.AccessDeniedException"),
    ("sfn:sendTaskFailure", "arn:aws:states:::aws-sdk:sfn:sendTaskFailure",
     {"TaskToken": bob_token}, "Sfn.AccessDeniedException"),
]
for n, (name, resource, parameters, error) in enumerate(denied_cases):
    sm = alice.create_state_machine(name=f"intruder{n}", definition=one_task(resource, parameters),
                                    roleArn=ROLE)["stateMachineArn"]
    done = wait_done(alice, alice.start_execution(stateMachineArn=sm)["executionArn"])
    check(f"alice's workflow calling {name} on bob's resource fails ({done.get('error')})",
          done["status"] == "FAILED" and done.get("error") == error
          and "not authorized" in done.get("cause", ""))

check("bob's execution untouched", bob.describe_execution(executionArn=bob_waiting)["status"] == "RUNNING")
check("no execution of bob's started by alice",
      bob.list_executions(stateMachineArn=theirs["stateMachineArn"])["executions"] == [])
bob.send_task_success(taskToken=bob_token, output=json.dumps({"by": "bob"}))
check("bob's worker answers his own task",
      json.loads(wait_done(bob, bob_waiting)["output"]) == {"by": "bob"})

for name, resource in [("states:startExecution.sync:2", "arn:aws:states:::states:startExecution.sync:2"),
                       ("sfn:startExecution", "arn:aws:states:::aws-sdk:sfn:startExecution")]:
    sm = alice.create_state_machine(name=f"own-{name.replace(':', '-').replace('.', '-')}",
                                    definition=one_task(resource, {"StateMachineArn": alice_child}),
                                    roleArn=ROLE)["stateMachineArn"]
    done = wait_done(alice, alice.start_execution(stateMachineArn=sm)["executionArn"])
    started = json.loads(done.get("output", "{}")).get("ExecutionArn", "")
    check(f"alice's workflow starts her own child with {name}, in her account",
          done["status"] == "SUCCEEDED" and started.startswith("arn:aws:states:us-east-1:111111111111:execution:child:"))

print("all checks passed")
