// What an execution's history says about each state: its latest status, how often it ran,
// whether a redrive ran it again, its input, output, error and events; and the status of each
// Map iteration. States are keyed by lane (`Loop[3]/` inside iteration 3 of the Map `Loop`)
// and name (AWS requires state names to be unique in a definition).
//
// A history does not name an event's lane; `previousEventId` does: a task's events chain
// within their lane (`…Scheduled` follows its `…StateEntered` or the failure it retries,
// `…Started` its `…Scheduled`, the end its `…Started`, `…StateExited` the end). An
// iteration's first state is entered in the order the iterations started, so it claims the
// next started iteration (`MapIterationStarted` names the index) of its Map; the next
// state of a lane follows the `…StateExited` before it.

const FAILURE = /(Failed|TimedOut|StartFailed|ScheduleFailed|SubmitFailed)$/;

export function details(e) {
  for (const [k, v] of Object.entries(e)) if (k.endsWith("EventDetails")) return v || {};
  return {};
}

// For each state inside an inline Map's processor, its Map; for each such Map, its start state.
function mapsOf(machine, enclosing, out = { mapOf: {}, startOf: {} }) {
  for (const [name, s] of Object.entries((machine && machine.States) || {})) {
    if (enclosing) out.mapOf[name] = enclosing;
    if (s.Type === "Parallel") for (const b of s.Branches || []) mapsOf(b, enclosing, out);
    if (s.Type === "Map") {
      const p = s.ItemProcessor || s.Iterator;
      if (p && (p.ProcessorConfig || {}).Mode !== "DISTRIBUTED") {
        out.startOf[name] = p.StartAt;
        mapsOf(p, name, out);
      }
    }
  }
  return out;
}

// The state type an event that does not name its state belongs to.
function kindOf(type) {
  if (/^(Task|Activity|LambdaFunction)/.test(type)) return "Task";
  if (type.startsWith("ParallelState")) return "Parallel";
  if (type.startsWith("MapState") || type.startsWith("MapRun")) return "Map";
  return null;
}

export function analyze(events, definition) {
  const { mapOf, startOf } = mapsOf(definition, null);
  const states = new Map();
  const iterations = new Map();
  const at = new Map(); // event id → state record
  const enteredAt = new Map();
  const mapLane = {}; // Map name → the lane it was last entered in
  const queues = new Map(); // `${lane}|${map}` → started iterations no state has claimed
  let running = []; // records of running states, oldest first
  const closed = new Set(); // lanes of iterations that ended
  let redrives = 0;
  let ended = null;
  // The variables assigned so far, in history order: what a state saw when it was entered
  // (one scope for the whole history, so inside Parallel branches and Map iterations it can
  // hold a sibling's assignments too).
  let variables = {};
  const rec = (lane, name) => {
    const key = `${lane}|${name}`;
    if (!states.has(key)) states.set(key, { lane, name, runs: 0, events: [], status: "notreached" });
    return states.get(key);
  };
  const latest = (test) => {
    for (let i = running.length - 1; i >= 0; i--) if (test(running[i])) return running[i];
    return undefined;
  };
  const laneFor = (name, prev) => {
    const map = mapOf[name];
    if (!map) return "";
    const outer = mapLane[map] ?? laneFor(map, prev);
    const inside = `${outer}${map}[`;
    if (name === startOf[map]) {
      const queue = queues.get(`${outer}|${map}`) || [];
      if (queue.length) return `${inside}${queue.shift()}]/`;
    }
    if (prev && prev.lane.startsWith(inside) && !closed.has(prev.lane)) return prev.lane;
    const open = latest((r) => r.lane.startsWith(inside));
    return open ? open.lane : `${inside}?]/`;
  };
  for (const e of events) {
    const type = e.type;
    const d = details(e);
    const prev = at.get(e.previousEventId);
    let r;
    if (type.endsWith("StateEntered")) {
      const lane = laneFor(d.name, prev);
      r = rec(lane, d.name);
      r.runs += 1;
      r.type = type.slice(0, -"StateEntered".length);
      Object.assign(r, { status: "running", failed: false, input: d.input, output: undefined, error: undefined, cause: undefined, reopened: undefined });
      Object.assign(r, { enteredId: e.id, enteredTime: e.timestamp, runStart: r.events.length, variables: { ...variables } });
      if (r.type === "Map") mapLane[d.name] = lane;
      if (redrives > 0) r.rerun = true;
      enteredAt.set(e.id, r);
      running.push(r);
    } else if (type.endsWith("StateExited")) {
      r = prev && prev.name === d.name && prev.status === "running" ? prev : latest((x) => x.name === d.name);
      if (d.assignedVariables) variables = { ...variables, ...d.assignedVariables };
    } else if (type.startsWith("MapIteration")) {
      const lane = mapLane[d.name] ?? "";
      const key = `${lane}|${d.name}`;
      if (!iterations.has(key)) iterations.set(key, new Map());
      iterations.get(key).set(d.index, type.slice("MapIteration".length));
      const inside = `${lane}${d.name}[${d.index}]/`;
      if (type === "MapIterationStarted") {
        if (!queues.has(key)) queues.set(key, []);
        queues.get(key).push(d.index);
        closed.delete(inside);
      } else {
        closed.add(inside);
        running = running.filter((x) => !x.lane.startsWith(inside) || x.status !== "running" || x.type === "Fail");
      }
    } else if (type === "EvaluationFailed") {
      r = latest((x) => x.name === d.state);
    } else if (kindOf(type)) {
      const kind = kindOf(type);
      r = prev && prev.type === kind && prev.status === "running" ? prev : latest((x) => x.type === kind);
    } else if (type === "ExecutionRedriven") {
      redrives += 1;
      // A redrive re-opens what did not succeed; a redrive from a chosen state
      // (Stepwise.RedriveExecutionFromState) may enter another state instead, so each keeps
      // the outcome it had (`reopened`) until it is entered again.
      for (const x of states.values()) {
        if (["failed", "aborted", "running"].includes(x.status)) Object.assign(x, { status: "redriven", failed: false, reopened: x.reopened ?? x.status });
      }
      running = [...states.values()].filter((x) => x.status === "redriven");
      for (const x of running) x.status = "running";
      for (const q of queues.values()) q.length = 0;
    } else if (["ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"].includes(type)) {
      ended = { type, ...d };
      // A state that fails without an event of its own (a path error in a Pass) is named in
      // the cause, as AWS words it: "... the state 'X' (entered at the event id #7) ...".
      const culprit = enteredAt.get(Number((/entered at the event id #(\d+)/.exec(d.cause || "") || [])[1]));
      if (culprit && culprit.status === "running") Object.assign(culprit, { failed: true, error: d.error, cause: d.cause });
      for (const x of states.values()) {
        if (x.status !== "running") continue;
        if (x.reopened) x.status = x.reopened;
        else if (type === "ExecutionFailed" && (x.failed || x.type === "Fail")) {
          x.status = "failed";
          if (x.type === "Fail" && !x.error) Object.assign(x, { error: d.error, cause: d.cause });
        } else if (type === "ExecutionTimedOut" && x.failed) x.status = "failed";
        else x.status = "aborted";
      }
      running = [];
    }
    if (r) {
      r.events.push(e);
      if (type.endsWith("StateExited")) {
        r.status = r.failed ? "caught" : "succeeded";
        r.output = d.output;
        running = running.filter((x) => x !== r);
      } else if (type.endsWith("Scheduled")) {
        // A new attempt: a retried failure is not the state's outcome.
        Object.assign(r, { failed: false, error: undefined, cause: undefined });
      } else if (FAILURE.test(type)) {
        r.failed = true;
        if (d.error !== undefined || d.cause !== undefined) Object.assign(r, { error: d.error, cause: d.cause });
      }
      at.set(e.id, r);
    }
  }
  // `at`: each event's state record, for the events the analysis gave a state.
  return { states, iterations, redrives, ended, at };
}

// The state the error banner leads to: the latest failed state that is not a container,
// else the latest failed container.
export function failingState(model) {
  const failed = [...model.states.values()].filter((r) => r.status === "failed");
  const leaf = failed.filter((r) => r.type !== "Parallel" && r.type !== "Map");
  return (leaf.length ? leaf : failed).at(-1);
}
