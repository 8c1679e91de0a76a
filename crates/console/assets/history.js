// What an execution's history says about each state: its latest status, how often it ran,
// whether a redrive ran it again, its input, output, error and events; and the status of each
// Map iteration. States are keyed by lane (`Map[3]/` inside iteration 3 of `Map`) and name;
// each event inherits the lane and state of the event its previousEventId names.

const FAILURES = /(Failed|TimedOut|StartFailed|ScheduleFailed|SubmitFailed)$/;

export function details(e) {
  for (const [k, v] of Object.entries(e)) if (k.endsWith("EventDetails")) return v || {};
  return {};
}

export function analyze(events) {
  const at = new Map();
  const enteredAt = new Map();
  const states = new Map();
  const iterations = new Map();
  let redrives = 0;
  let ended = null;
  const rec = (lane, name) => {
    const key = `${lane}|${name}`;
    if (!states.has(key)) states.set(key, { lane, name, runs: 0, events: [], status: "notreached" });
    return states.get(key);
  };
  for (const e of events) {
    const prev = at.get(e.previousEventId) || { lane: "", state: null };
    let { lane, state } = prev;
    const d = details(e);
    const type = e.type;
    if (type.endsWith("StateEntered")) {
      state = d.name;
      const r = rec(lane, state);
      r.runs += 1;
      r.type = type.slice(0, -"StateEntered".length);
      r.status = "running";
      r.failed = false;
      r.input = d.input;
      enteredAt.set(e.id, r);
      r.output = undefined;
      r.error = r.cause = undefined;
      if (redrives > 0) r.rerun = true;
    } else if (type.startsWith("MapIteration")) {
      const suffix = `${d.name}[${d.index}]/`;
      const parent = lane.endsWith(suffix) ? lane.slice(0, -suffix.length) : lane;
      const key = `${parent}|${d.name}`;
      if (!iterations.has(key)) iterations.set(key, new Map());
      iterations.get(key).set(d.index, type.slice("MapIteration".length));
      if (type === "MapIterationStarted") {
        lane = parent + suffix;
        state = null;
      } else {
        lane = parent;
        state = d.name;
      }
    } else if (type === "ExecutionRedriven") {
      redrives += 1;
      for (const r of states.values()) {
        if (["failed", "aborted", "running"].includes(r.status)) {
          r.status = "redriven";
          r.failed = false;
        }
      }
    } else if (["ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"].includes(type)) {
      ended = { type, ...d };
      // A state that fails without an event of its own (a path error in a Pass) is named in
      // the cause, as AWS words it: "... the state 'X' (entered at the event id #7) ...".
      const culprit = enteredAt.get(Number((/entered at the event id #(\d+)/.exec(d.cause || "") || [])[1]));
      if (culprit && culprit.status === "running") Object.assign(culprit, { failed: true, error: d.error, cause: d.cause });
      for (const r of states.values()) {
        if (r.status !== "running" && r.status !== "redriven") continue;
        if (type === "ExecutionFailed" && (r.failed || r.type === "Fail")) {
          r.status = "failed";
          if (r.type === "Fail" && !r.error) Object.assign(r, { error: d.error, cause: d.cause });
        } else if (type === "ExecutionTimedOut" && r.failed) r.status = "failed";
        else r.status = "aborted";
      }
    }
    if (state) {
      const r = rec(lane, state);
      r.events.push(e);
      if (type.endsWith("StateExited")) {
        r.status = r.failed ? "caught" : "succeeded";
        r.output = d.output;
      } else if (FAILURES.test(type) && !type.startsWith("Execution") && !type.startsWith("MapIteration")) {
        r.failed = true;
        r.status = "failed";
        if (d.error !== undefined || d.cause !== undefined) Object.assign(r, { error: d.error, cause: d.cause });
      }
    }
    at.set(e.id, { lane, state });
  }
  return { states, iterations, redrives, ended };
}

// The state the error banner leads to: the deepest failed state (not a container when one of
// its inner states failed), in the order they were entered.
export function failingState(model) {
  const failed = [...model.states.values()].filter((r) => r.status === "failed");
  const leaf = failed.filter((r) => r.type !== "Parallel" && r.type !== "Map");
  return (leaf.length ? leaf : failed).at(-1);
}
