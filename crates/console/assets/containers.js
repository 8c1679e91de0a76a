// What a Parallel's or an inline Map's latest run did, read from the history, so that the
// state can be replayed through TestState with it as the mock (app.js, `stepsOf`):
//   - its result before ResultSelector: a Parallel's is its branches' outputs, each the
//     output of the branch's last state; an inline Map's is its iterations' outputs in index
//     order, each the `…StateExited` that `MapIterationSucceeded` follows;
//   - or its error, when it failed (caught or not);
//   - and what entered each lane (a branch's input after Parameters, each item after
//     ItemSelector), which TestState does not report.
// Lanes are told apart by the model's lanes (history.js): a branch runs in its Parallel's
// lane, iteration i of Map `M` in lane `M[i]/` inside the Map's.

import { details } from "./history.js";

// The most events a run may span for its lanes to be read: a bigger run (a 10,000-iteration
// Map) is not replayed rather than read whole.
export const LANE_EVENTS = 1000;

const parse = (text) => {
  try {
    return { value: JSON.parse(text) };
  } catch {
    return undefined;
  }
};

// `{ result, inputs, retries }` for a run that succeeded, `{ error, retries }` for one that
// failed, or `{ reason }` saying why neither can be told. `byId` holds the loaded events,
// `run` the state's own events of its latest run.
export function containerRun(model, byId, execution, r, def, run) {
  const kind = def.Type;
  const processor = def.ItemProcessor || def.Iterator || {};
  if (kind === "Map" && (processor.ProcessorConfig || {}).Mode === "DISTRIBUTED") {
    return { reason: "A Distributed Map's iterations are child executions, not events of this history: see its Map Run for their outputs." };
  }
  const starts = run.filter((e) => e.type === `${kind}StateStarted`);
  const retries = Math.max(0, starts.length - 1);
  const failedAt = run.findIndex((e) => e.type === `${kind}StateFailed`);
  if (failedAt >= 0) {
    const error = errorOf(model, execution, r, def);
    return error ? { error, retries } : { reason: `The history does not say which error the ${kind} failed with (its Catch does not keep it where the console can read it).` };
  }
  const exit = run.find((e) => e.type.endsWith("StateExited"));
  if (!starts.length || !exit) return { reason: `The ${kind} has not finished.` };
  // A retry runs every lane again: the last attempt's lanes are the result. A redrive keeps
  // the lanes that succeeded before it: their outputs are in the runs it redrove.
  const from = redriveChainStart(byId, r) ?? starts.at(-1).id;
  const span = exit.id - from + 1;
  if (span > LANE_EVENTS) return { reason: `This run of the ${kind} spans ${span} events; the console rebuilds the result of at most ${LANE_EVENTS}.` };
  for (let id = from; id <= exit.id; id++) {
    if (!byId.has(id)) return { reason: `The events of this run (#${from} to #${exit.id}) are not all loaded: the page reads only the first and the latest events of a long history.` };
  }
  const lanes = kind === "Parallel" ? branchesOf(model, byId, r, def, from, exit.id) : iterationsOf(model, byId, r, processor, starts.at(-1), from, exit.id);
  return lanes.reason ? lanes : { ...lanes, retries };
}

// Where the chain of runs a redrive continued begins: the first of this state's
// `…StateEntered` events that each redrive re-entered; undefined when the latest run was
// not a redrive's.
function redriveChainStart(byId, r) {
  const redriven = (id) => (byId.get((byId.get(id) || {}).previousEventId) || {}).type === "ExecutionRedriven";
  if (!redriven(r.enteredId)) return undefined;
  const entries = r.events.filter((e) => e.type.endsWith("StateEntered")).map((e) => e.id);
  let i = entries.lastIndexOf(r.enteredId);
  while (i > 0 && redriven(entries[i])) i -= 1;
  return entries[i];
}

// Each branch's output: the latest `…StateExited` of a state of the branch (its last
// state, a terminal one), and the branch input (its first state's latest input).
function branchesOf(model, byId, r, def, from, to) {
  const result = [];
  let input;
  for (const [b, branch] of (def.Branches || []).entries()) {
    const states = branch.States || {};
    let exit;
    for (let id = from; id <= to; id++) {
      const e = byId.get(id);
      const owner = model.at.get(id);
      if (!owner || owner.lane !== r.lane || !(owner.name in states)) continue;
      if (e.type.endsWith("StateExited")) exit = e;
      else if (e.type.endsWith("StateEntered") && owner.name === branch.StartAt) input = details(e).input;
    }
    const last = exit && states[details(exit).name];
    if (!last || !(last.End || last.Type === "Succeed")) return { reason: `Branch ${b}'s last state is not in this run's events.` };
    const output = parse(details(exit).output);
    if (!output) return { reason: `Branch ${b}'s output is not JSON.` };
    result.push(output.value);
  }
  return { result, inputs: input === undefined ? [] : [parse(input)?.value] };
}

// Each iteration's output, in index order, and its input (after ItemSelector).
function iterationsOf(model, byId, r, processor, started, from, to) {
  const length = details(started).length ?? 0;
  const outputs = new Array(length);
  const inputs = new Array(length);
  const inside = `${r.lane}${r.name}[`;
  for (let id = from; id <= to; id++) {
    const e = byId.get(id);
    const d = details(e);
    if (e.type === "MapIterationSucceeded" && d.name === r.name) {
      const exit = byId.get(e.previousEventId);
      const owner = model.at.get(e.previousEventId);
      if (exit && owner && owner.lane === `${inside}${d.index}]/` && exit.type.endsWith("StateExited")) outputs[d.index] = details(exit).output;
    } else if (e.type.endsWith("StateEntered") && d.name === processor.StartAt) {
      const owner = model.at.get(id);
      const index = owner && owner.lane.startsWith(inside) ? Number(owner.lane.slice(inside.length, -2)) : NaN;
      if (index >= 0 && index < length) inputs[index] = d.input;
    }
  }
  const result = [];
  for (let i = 0; i < length; i++) {
    const output = outputs[i] === undefined ? undefined : parse(outputs[i]);
    if (!output) return { reason: `Iteration ${i}'s output is not in this run's events.` };
    result.push(output.value);
  }
  return { result, inputs: inputs.map((t) => (t === undefined ? undefined : parse(t)?.value)) };
}

// The error a failed run ended with: a caught one from where the Catch put it in the
// state's output (`{Error, Cause}` at its ResultPath), an uncaught one from the execution's
// failure, which it caused.
function errorOf(model, execution, r, def) {
  if (r.status === "caught") {
    const output = parse(r.output);
    for (const c of def.Catch || []) {
      const at = c.ResultPath === undefined ? "$" : c.ResultPath;
      if (typeof at !== "string" || !/^\$(\.[A-Za-z_][\w]*)*$/.test(at) || !output) continue;
      const value = at.split(".").slice(1).reduce((v, k) => (v && typeof v === "object" ? v[k] : undefined), output.value);
      if (value && typeof value.Error === "string") return { error: value.Error, cause: typeof value.Cause === "string" ? value.Cause : "" };
    }
    return undefined;
  }
  if (r.status === "failed" && model.ended && model.ended.type === "ExecutionFailed") {
    return { error: execution.error || model.ended.error || "States.TaskFailed", cause: execution.cause || model.ended.cause || "" };
  }
  return undefined;
}
