// The AWS SDK for JavaScript v3 against a running stepwise (STEPWISE_ENDPOINT): a state
// machine run end to end, an activity's tags, StartSyncExecution, and the error shapes the SDK
// builds from the wire. Prints "checks passed" at the end; any failed check throws.
import assert from "node:assert/strict";
import {
  SFNClient,
  CreateStateMachineCommand,
  StartExecutionCommand,
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  CreateActivityCommand,
  TagResourceCommand,
  UntagResourceCommand,
  ListTagsForResourceCommand,
  StartSyncExecutionCommand,
  DescribeStateMachineAliasCommand,
  TestStateCommand,
} from "@aws-sdk/client-sfn";

const endpoint = process.env.STEPWISE_ENDPOINT;
assert.ok(endpoint, "STEPWISE_ENDPOINT is not set");
const client = new SFNClient({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "test", secretAccessKey: "test" },
  // StartSyncExecution and TestState would go to sync-127.0.0.1 otherwise.
  disableHostPrefix: true,
});
const role = "arn:aws:iam::123456789012:role/js";
const send = (command) => client.send(command);

// A state machine run end to end.
const definition = JSON.stringify({
  StartAt: "Greet",
  States: {
    Greet: {
      Type: "Pass",
      Parameters: { "greeting.$": "States.Format('Hello, {}!', $.who)" },
      End: true,
    },
  },
});
const { stateMachineArn } = await send(
  new CreateStateMachineCommand({ name: "js-hello", definition, roleArn: role }),
);
const started = await send(
  new StartExecutionCommand({ stateMachineArn, name: "first", input: '{"who":"js"}' }),
);
assert.ok(started.startDate instanceof Date, "startDate is a Date");
let described;
for (let i = 0; i < 100; i++) {
  described = await send(new DescribeExecutionCommand({ executionArn: started.executionArn }));
  if (described.status !== "RUNNING") break;
  await new Promise((r) => setTimeout(r, 50));
}
assert.equal(described.status, "SUCCEEDED");
assert.deepEqual(JSON.parse(described.output), { greeting: "Hello, js!" });
const history = await send(
  new GetExecutionHistoryCommand({ executionArn: started.executionArn }),
);
assert.deepEqual(
  history.events.map((e) => e.type),
  ["ExecutionStarted", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"],
);
assert.ok(history.events[0].timestamp instanceof Date, "event timestamps are Dates");

// An activity keeps the tags it was created with; the tagging operations take its ARN.
const { activityArn } = await send(
  new CreateActivityCommand({ name: "js-worker", tags: [{ key: "team", value: "a" }] }),
);
await send(new TagResourceCommand({ resourceArn: activityArn, tags: [{ key: "env", value: "t" }] }));
await send(new UntagResourceCommand({ resourceArn: activityArn, tagKeys: ["team"] }));
const { tags } = await send(new ListTagsForResourceCommand({ resourceArn: activityArn }));
assert.deepEqual(tags, [{ key: "env", value: "t" }]);

// StartSyncExecution (the SDK's `sync-` host prefix is off).
const express = await send(
  new CreateStateMachineCommand({
    name: "js-express",
    definition,
    roleArn: role,
    type: "EXPRESS",
  }),
);
const sync = await send(
  new StartSyncExecutionCommand({
    stateMachineArn: express.stateMachineArn,
    input: '{"who":"sync"}',
  }),
);
assert.equal(sync.status, "SUCCEEDED");
assert.deepEqual(JSON.parse(sync.output), { greeting: "Hello, sync!" });

// TestState gets the `sync-` host prefix too.
const tested = await send(
  new TestStateCommand({
    definition: JSON.stringify({ Type: "Pass", Result: { ok: true }, End: true }),
    roleArn: role,
    input: "{}",
  }),
);
assert.equal(tested.status, "SUCCEEDED");
assert.deepEqual(JSON.parse(tested.output), { ok: true });

// Errors: the SDK names them from `__type` and reads the status and modelled fields.
const failure = async (command) => {
  try {
    await send(command);
  } catch (e) {
    return e;
  }
  assert.fail(`${command.constructor.name} did not fail`);
};
const missing = await failure(
  new DescribeExecutionCommand({ executionArn: `${started.executionArn}-missing` }),
);
assert.equal(missing.name, "ExecutionDoesNotExist");
assert.equal(missing.$metadata.httpStatusCode, 400);
assert.match(missing.message, /Execution Does Not Exist/);
const alias = `${stateMachineArn}:nope`;
const notFound = await failure(
  new DescribeStateMachineAliasCommand({ stateMachineAliasArn: alias }),
);
assert.equal(notFound.name, "ResourceNotFound");
assert.equal(notFound.$metadata.httpStatusCode, 404);
assert.equal(notFound.resourceName, alias);

console.log("checks passed");
