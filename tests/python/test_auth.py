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

print("all checks passed")
