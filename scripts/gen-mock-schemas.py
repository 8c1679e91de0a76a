#!/usr/bin/env python3
"""Regenerates crates/engine/src/mock_schemas.json from the AWS service models in botocore.

Usage: scripts/gen-mock-schemas.py > crates/engine/src/mock_schemas.json

TestState checks a mocked Task result against the output shape of the API the Task calls
(`mock.fieldValidationMode`). This keeps, for the integrations listed below, the output
structure and every shape reachable from it: type, members (first letter upper-cased, as
Step Functions names them), required members, length/range bounds and enum values. The
service models are botocore's (Copyright Amazon.com, Inc. or its affiliates, Apache License
2.0); the output keeps that attribution in its "_source" field.
"""
import gzip
import json
import os
import sys

import botocore

SOURCE = (
    "Derived from the AWS service models shipped with botocore {version} "
    "(botocore/data/<service>/<version>/service-2.json). Copyright Amazon.com, Inc. or its "
    "affiliates. Licensed under the Apache License, Version 2.0 "
    "(http://www.apache.org/licenses/LICENSE-2.0). Modified: reduced to the output shapes of "
    "the integrations listed in scripts/gen-mock-schemas.py. Regenerate with that script."
)

# Resource (as written after arn:aws:states:::) -> (botocore service, operation, members
# whose value is any JSON rather than the model's type).
OPTIMIZED = {
    "lambda:invoke": ("lambda", "Invoke", ["Payload"]),
    "dynamodb:getItem": ("dynamodb", "GetItem", []),
    "dynamodb:putItem": ("dynamodb", "PutItem", []),
    "dynamodb:updateItem": ("dynamodb", "UpdateItem", []),
    "dynamodb:deleteItem": ("dynamodb", "DeleteItem", []),
    "sqs:sendMessage": ("sqs", "SendMessage", []),
    "sns:publish": ("sns", "Publish", []),
    "events:putEvents": ("events", "PutEvents", []),
    "states:startExecution": ("stepfunctions", "StartExecution", []),
    "ecs:runTask": ("ecs", "RunTask", []),
    "batch:submitJob": ("batch", "SubmitJob", []),
    "glue:startJobRun": ("glue", "StartJobRun", []),
    "athena:startQueryExecution": ("athena", "StartQueryExecution", []),
    "codebuild:startBuild": ("codebuild", "StartBuild", []),
}
# aws-sdk:<service>:<action> integrations: service name in the ARN -> botocore service.
SDK = {
    "s3": ("s3", ["GetObject", "PutObject", "HeadObject", "CopyObject", "DeleteObject",
                  "ListObjectsV2", "ListBuckets"]),
    "kms": ("kms", ["Encrypt", "Decrypt", "GenerateDataKey"]),
    "lambda": ("lambda", ["GetFunction", "Invoke", "ListFunctions"]),
    "dynamodb": ("dynamodb", ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"]),
    "sqs": ("sqs", ["SendMessage", "ReceiveMessage", "GetQueueUrl"]),
    "sns": ("sns", ["Publish"]),
    "sfn": ("stepfunctions", ["StartExecution", "DescribeExecution", "ListExecutions",
                              "StartSyncExecution"]),
    "eventbridge": ("events", ["PutEvents"]),
    "secretsmanager": ("secretsmanager", ["GetSecretValue"]),
    "ssm": ("ssm", ["GetParameter"]),
    "sts": ("sts", ["GetCallerIdentity"]),
}

# Where AWS's TestState checks differ from the botocore model this was generated from, the
# recorded AWS answer wins: (service, shape) -> constraints to overwrite.
OVERRIDES = {
    # botocore 1.43 allows 32768 MB; TestState answered "exceeds the maximum value" for 10241
    # (test_field_validation_mode::test_strict_mode_aws_sdk_lambda_get_function_task, 2025-12).
    ("lambda", "MemorySize"): {"max": 10240},
}


def load(service):
    root = os.path.join(os.path.dirname(botocore.__file__), "data", service)
    version = sorted(os.listdir(root))[-1]
    path = os.path.join(root, version, "service-2.json")
    if os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz") as f:
            return json.load(f)
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def upper_first(name):
    return name[:1].upper() + name[1:]


def reduce_shapes(model, start, out):
    """Adds `start` and every shape reachable from it to `out`, reduced."""
    todo = [start]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        shape = model["shapes"][name]
        kind = shape["type"]
        r = {"type": kind}
        for key in ("min", "max"):
            if key in shape:
                r[key] = shape[key]
        if "enum" in shape:
            r["enum"] = shape["enum"]
        if kind == "structure":
            r["members"] = {upper_first(m): v["shape"] for m, v in shape.get("members", {}).items()}
            if shape.get("required"):
                r["required"] = [upper_first(m) for m in shape["required"]]
            todo.extend(r["members"].values())
        elif kind == "list":
            r["member"] = shape["member"]["shape"]
            todo.append(r["member"])
        elif kind == "map":
            r["value"] = shape["value"]["shape"]
            todo.append(r["value"])
        out[name] = r


def apply_overrides(service, shapes):
    for (svc, name), constraints in OVERRIDES.items():
        if svc == service and name in shapes:
            shapes[name].update(constraints)


def main():
    models = {}
    services = {}
    integrations = {}

    def add(key, service, operation, any_members):
        model = models.setdefault(service, load(service))
        output = model["operations"][operation].get("output", {}).get("shape")
        if output is None:
            return
        shapes = services.setdefault(service, {})
        reduce_shapes(model, output, shapes)
        entry = {"service": service, "output": output}
        if any_members:
            entry["any"] = any_members
        integrations[key] = entry

    for key, (service, operation, any_members) in OPTIMIZED.items():
        add(key, service, operation, any_members)
    for sdk, (service, operations) in SDK.items():
        for operation in operations:
            action = operation[:1].lower() + operation[1:]
            add(f"aws-sdk:{sdk}:{action}", service, operation, [])
    for service, shapes in services.items():
        apply_overrides(service, shapes)
    json.dump(
        {
            "_source": SOURCE.format(version=botocore.__version__),
            "integrations": integrations,
            "shapes": services,
        },
        sys.stdout,
        indent=None,
        separators=(",", ":"),
        sort_keys=True,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
