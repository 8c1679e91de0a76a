#!/usr/bin/env python3
"""Regenerates crates/api/src/model.json from the AWS Step Functions Smithy model.

Usage: scripts/gen-sfn-model.py path/to/sfn.json [> crates/api/src/model.json]

The input is the Smithy JSON AST of the Step Functions service (for example
aws/api-models-aws models/sfn/service/2016-11-23/sfn-2016-11-23.json, or the
aws-models/sfn.json vendored by the AWS SDKs). That model is Copyright
Amazon.com, Inc. or its affiliates and licensed under the Apache License,
Version 2.0; the output keeps that attribution in its "_source" field.

The output keeps only what request validation needs (crates/api/src/validate.rs):
for each operation its input structure, and every shape reachable from it with
its type, required members, length/range bounds, pattern and enum values.
"""
import json
import sys

SOURCE = (
    "Derived from the AWS Step Functions Smithy model (com.amazonaws.sfn, API version "
    "2016-11-23, as published in aws/api-models-aws "
    "models/sfn/service/2016-11-23/sfn-2016-11-23.json). Copyright Amazon.com, Inc. or its "
    "affiliates. Licensed under the Apache License, Version 2.0 "
    "(http://www.apache.org/licenses/LICENSE-2.0). Modified: reduced to the request-validation "
    "constraints of the 37 operation inputs; messageOrder records the enum order AWS prints in "
    "ValidationException messages where a recorded response shows it. Regenerate with "
    "scripts/gen-sfn-model.py."
)

# The order AWS lists enum values in ValidationException messages is not the
# model's; where a response recorded against AWS shows it, it is kept here.
MESSAGE_ORDER = {
    # test_sfn_api::TestSnfApi::test_state_machine_status_filter
    "ExecutionStatus": ["SUCCEEDED", "TIMED_OUT", "PENDING_REDRIVE", "ABORTED", "FAILED", "RUNNING"],
}

PRELUDE = {
    "String": "string", "Boolean": "boolean", "PrimitiveBoolean": "boolean",
    "Integer": "integer", "PrimitiveInteger": "integer", "Short": "integer",
    "PrimitiveShort": "integer", "Byte": "integer", "PrimitiveByte": "integer",
    "Long": "long", "PrimitiveLong": "long", "BigInteger": "long",
    "Float": "float", "PrimitiveFloat": "float", "Double": "float",
    "PrimitiveDouble": "float", "BigDecimal": "float",
    "Timestamp": "timestamp", "Blob": "blob",
}
NUMBER = {"integer": "integer", "short": "integer", "byte": "integer", "long": "long",
          "bigInteger": "long", "float": "float", "double": "float", "bigDecimal": "float"}


def short(target):
    return target.split("#", 1)[1]


def num(x):
    return int(x) if float(x).is_integer() else x


def constraints(traits, out):
    length = traits.get("smithy.api#length")
    if length is not None:
        if "min" in length:
            out["min"] = num(length["min"])
        if "max" in length:
            out["max"] = num(length["max"])
    rng = traits.get("smithy.api#range")
    if rng is not None:
        if "min" in rng:
            out["min"] = num(rng["min"])
        if "max" in rng:
            out["max"] = num(rng["max"])
    if "smithy.api#pattern" in traits:
        out["pattern"] = traits["smithy.api#pattern"]
    return out


def main(path):
    with open(path, encoding="utf-8") as f:
        shapes = json.load(f)["shapes"]
    service = next(s for s in shapes.values() if s.get("type") == "service")
    operations = {}
    for op in service.get("operations", []):
        target = op["target"]
        operations[short(target)] = short(shapes[target]["input"]["target"])

    out = {}

    def convert(target):
        name = short(target)
        if name in out:
            return name
        if target.startswith("smithy.api#"):
            kind = PRELUDE.get(name)
            if kind is None:
                raise SystemExit(f"unsupported prelude shape {target}")
            out[name] = {"type": kind}
            return name
        s = shapes[target]
        kind = s["type"]
        traits = s.get("traits", {})
        if kind == "structure":
            shape = {"type": "structure", "members": {}, "required": []}
            out[name] = shape  # before recursing (cycles)
            for member, m in s.get("members", {}).items():
                mt = m.get("traits", {})
                tname = convert(m["target"])
                local = constraints(mt, {})
                if local:  # member-level constraints: a shape of its own
                    derived = dict(out[tname])
                    derived.update(local)
                    tname = f"{tname}@{name}.{member}"
                    out[tname] = derived
                shape["members"][member] = tname
                if "smithy.api#required" in mt:
                    shape["required"].append(member)
            if not shape["required"]:
                del shape["required"]
            return name
        if kind == "list" or kind == "set":
            shape = constraints(traits, {"type": "list", "member": None})
            out[name] = shape
            shape["member"] = convert(s["member"]["target"])
            return name
        if kind == "enum":
            values = [m.get("traits", {}).get("smithy.api#enumValue", k)
                      for k, m in s.get("members", {}).items()]
            shape = {"type": "enum", "values": values}
        elif kind == "string" and "smithy.api#enum" in traits:
            shape = {"type": "enum", "values": [e["value"] for e in traits["smithy.api#enum"]]}
        elif kind == "string":
            shape = constraints(traits, {"type": "string"})
        elif kind in NUMBER:
            shape = constraints(traits, {"type": NUMBER[kind]})
        elif kind in ("boolean", "timestamp", "blob"):
            shape = {"type": kind}
        else:
            raise SystemExit(f"{name}: shape type {kind} is not supported by validate.rs")
        if shape["type"] == "enum" and name in MESSAGE_ORDER:
            if sorted(MESSAGE_ORDER[name]) != sorted(shape["values"]):
                raise SystemExit(f"{name}: MESSAGE_ORDER no longer matches the model's values")
            shape["messageOrder"] = MESSAGE_ORDER[name]
        out[name] = shape
        return name

    for input_shape in operations.values():
        convert("com.amazonaws.sfn#" + input_shape)

    model = {
        "_source": SOURCE,
        "operations": dict(sorted(operations.items())),
        "shapes": {k: out[k] for k in sorted(out)},
    }
    json.dump(model, sys.stdout, indent=1)
    sys.stdout.write("\n")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
