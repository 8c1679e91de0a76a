#!/usr/bin/env python3
"""Extracts compact AWS service models for stepwise's `aws-sdk:*` integrations.

From botocore's service models (installed with boto3), for each service below: the protocol,
endpoint prefix, signing name, JSON target prefix and version, API version, every operation's
input/output shape and HTTP binding, and the shapes those reach (member names, types,
locations, list/map/timestamp/blob details). Documentation and constraints are dropped.

Writes crates/engine/src/aws_models/models.json.gz (one JSON object keyed by the service name
of `arn:aws:states:::aws-sdk:SERVICE:ACTION`).

Usage: scripts/gen-aws-models.py            (regenerate)
To add a service: add its botocore name to SERVICES (and to NAMES when the Java SDK's client
name cannot be derived from the serviceId), run the script, commit the result.
"""

import gzip
import json
import os
import re

import botocore.loaders

# botocore names of the shipped services.
SERVICES = [
    "dynamodb", "sqs", "sns", "events", "s3", "lambda", "stepfunctions", "ecs", "batch",
    "glue", "athena", "sts", "secretsmanager", "ssm", "kms", "sagemaker", "codebuild", "ec2",
    "cloudwatch", "logs", "kinesis", "firehose", "apigateway", "bedrock-runtime",
    "rekognition", "textract", "comprehend", "translate", "emr", "iam",
]

# The AWS Java SDK v2 client name where it is not the serviceId in PascalCase. Step Functions
# names errors `ClientName.ErrorName` and resources `aws-sdk:clientname:action`.
NAMES = {
    "events": "EventBridge",
    "logs": "CloudWatchLogs",
    "emr": "Emr",
}

# Shape attributes kept (everything else: documentation, constraints, enums, is dropped).
SHAPE_KEYS = {
    "type", "members", "member", "key", "value", "flattened", "payload", "timestampFormat",
    "locationName", "xmlNamespace", "streaming", "eventstream", "exception", "error",
}
MEMBER_KEYS = {
    "shape", "location", "locationName", "queryName", "flattened", "xmlAttribute",
    "xmlNamespace", "jsonvalue", "timestampFormat", "hostLabel",
}


def client_name(name, service_id):
    """The Java SDK v2 client prefix: `DynamoDB` -> `DynamoDb`, `API Gateway` -> `ApiGateway`."""
    if name in NAMES:
        return NAMES[name]
    out = ""
    for word in re.split(r"[^A-Za-z0-9]+", service_id):
        # A run of capitals keeps its first letter only: SQS -> Sqs, DynamoDB -> DynamoDb.
        out += re.sub(r"([A-Z])([A-Z0-9]+)(?![a-z])", lambda m: m[1] + m[2].lower(), word[:1].upper() + word[1:])
    return out


# Protocols stepwise speaks, as botocore names them.
PROTOCOLS = ["json", "rest-json", "rest-xml", "query", "ec2"]


def protocol(meta):
    """The first protocol of the service's list that stepwise speaks (CloudWatch: CBOR first)."""
    for p in meta.get("protocols", [meta["protocol"]]):
        if p in PROTOCOLS:
            return p
    raise SystemExit(f"{meta['serviceId']}: no supported protocol in {meta.get('protocols')}")


def extract(name):
    loader = botocore.loaders.Loader()
    model = loader.load_service_model(name, "service-2")
    meta = model["metadata"]
    shapes = model["shapes"]
    keep = {}

    def visit(shape_name):
        if shape_name in keep:
            return
        shape = shapes[shape_name]
        small = {k: v for k, v in shape.items() if k in SHAPE_KEYS}
        if "error" in small:
            small["error"] = {k: v for k, v in small["error"].items() if k in ("code", "httpStatusCode")}
        keep[shape_name] = small
        for ref in refs(small):
            visit(ref["shape"])
        for key in ("members",):
            if key in small:
                small[key] = {m: trim(r) for m, r in small[key].items()}
        for key in ("member", "key", "value"):
            if key in small:
                small[key] = trim(small[key])

    def trim(ref):
        return {k: v for k, v in ref.items() if k in MEMBER_KEYS}

    def refs(shape):
        out = list(shape.get("members", {}).values())
        out += [shape[k] for k in ("member", "key", "value") if k in shape]
        return out

    operations = {}
    errors = {}
    for op_name, op in model["operations"].items():
        entry = {"http": [op["http"]["method"], op["http"]["requestUri"]]}
        if op["http"].get("responseCode"):
            entry["status"] = op["http"]["responseCode"]
        for direction, key in (("input", "input"), ("output", "output")):
            if key in op:
                entry[direction] = op[key]["shape"]
                visit(op[key]["shape"])
                if op[key].get("resultWrapper"):
                    entry["resultWrapper"] = op[key]["resultWrapper"]
        for e in op.get("errors", []):
            visit(e["shape"])
            code = shapes[e["shape"]].get("error", {}).get("code", e["shape"])
            errors[code] = e["shape"]
        operations[op_name] = entry

    service_id = meta.get("serviceId", meta.get("serviceAbbreviation", name))
    client = client_name(name, service_id)
    out = {
        "client": client,
        "protocol": protocol(meta),
        "endpointPrefix": meta["endpointPrefix"],
        "signingName": meta.get("signingName", meta["endpointPrefix"]),
        "apiVersion": meta["apiVersion"],
        "operations": operations,
        "errors": {code: shape for code, shape in errors.items() if code != shape},
        "shapes": keep,
    }
    for key in ("targetPrefix", "jsonVersion", "globalEndpoint", "awsQueryCompatible"):
        if key in meta:
            out[key] = meta[key]
    # STS is called at its regional endpoints, as the SDKs do by default now.
    if name == "sts":
        out.pop("globalEndpoint", None)
    return client.lower(), out


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    target = os.path.join(root, "crates", "engine", "src", "aws_models", "models.json.gz")
    models = dict(extract(name) for name in SERVICES)
    text = json.dumps(models, separators=(",", ":"), sort_keys=True).encode()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "wb") as f:
        # mtime=0: the same models give the same bytes.
        f.write(gzip.compress(text, compresslevel=9, mtime=0))
    for arn_name, m in sorted(models.items()):
        print(f"{arn_name:16} {m['protocol']:10} {len(m['operations']):4} operations")
    print(f"{len(text)} bytes of JSON -> {os.path.getsize(target)} bytes in {target}")


if __name__ == "__main__":
    main()
