// The console's pages, routed by the URL's fragment:
//   #/                    state machines
//   #/sm/ARN              a state machine: graph, definition, versions, aliases, executions
//   #/exec/ARN            an execution: graph coloured by outcome, details, events, actions
//   #/maprun/ARN          a Map Run: counts and child executions
//   #/activities          activities
// Everything is read and changed through the AWS API (api.js).

import { call, all } from "./api.js";
import { analyze, details, failingState } from "./history.js";
import { containerRun } from "./containers.js";
import { buildGraph, drawGraph } from "./graph.js";

const main = document.getElementById("main");
// How many events the execution graph reads: the first page and, for a longer history, the
// latest page. A 10,000-iteration Map is never read whole.
const GRAPH_PAGE = 1000;
const TABLE_PAGE = 50;
const POLL_MS = 1500;
let timer = null;

function h(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const enc = encodeURIComponent;
// Whether the page of `arn` is still shown (its fragment holds the ARN, encoded or not).
const showing = (arn) => location.hash.includes(enc(arn)) || location.hash.includes(arn);
const date = (t) => (t ? new Date(t * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z") : "");
const pretty = (text) => {
  if (text === undefined || text === null) return "";
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return String(text);
  }
};
const badge = (status) => h("span", { class: `badge status-${String(status).toLowerCase()}` }, status);

function showError(where, e) {
  where.append(h("div", { class: "banner error", role: "alert" }, String(e.message || e)));
}

async function route() {
  clearTimeout(timer);
  timer = null;
  const hash = location.hash.slice(1) || "/";
  const [, page, ...rest] = hash.split("/");
  const arg = decodeURIComponent(rest.join("/"));
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    if (page === "sm") await machinePage(arg);
    else if (page === "exec") await executionPage(arg);
    else if (page === "maprun") await mapRunPage(arg);
    else if (page === "activities") await activitiesPage();
    else await machinesPage();
  } catch (e) {
    main.replaceChildren();
    showError(main, e);
  }
}

// ---------------------------------------------------------------- state machines

async function machinesPage() {
  const machines = await all("ListStateMachines", {}, "stateMachines");
  main.replaceChildren(
    h("h1", {}, "State machines"),
    h(
      "table",
      { id: "machines" },
      h("thead", {}, h("tr", {}, h("th", {}, "Name"), h("th", {}, "Type"), h("th", {}, "Created"))),
      h(
        "tbody",
        {},
        machines.map((m) =>
          h(
            "tr",
            { "data-arn": m.stateMachineArn },
            h("td", {}, h("a", { href: `#/sm/${enc(m.stateMachineArn)}` }, m.name)),
            h("td", {}, m.type),
            h("td", {}, date(m.creationDate)),
          ),
        ),
      ),
    ),
    machines.length ? "" : h("p", { class: "muted" }, "No state machines yet."),
  );
}

async function machinePage(arn) {
  const [sm, versions, aliases] = await Promise.all([
    call("DescribeStateMachine", { stateMachineArn: arn }),
    all("ListStateMachineVersions", { stateMachineArn: arn }, "stateMachineVersions", 200),
    all("ListStateMachineAliases", { stateMachineArn: arn }, "stateMachineAliases", 200),
  ]);
  const definition = JSON.parse(sm.definition);
  const graph = h("div", { class: "graph-box", id: "graph" });
  const executions = h("div", { id: "executions" });
  const status = h(
    "select",
    { id: "status-filter" },
    ["", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"].map((s) => h("option", { value: s }, s || "any status")),
  );
  const redrive = h(
    "select",
    { id: "redrive-filter" },
    ["", "REDRIVEN", "NOT_REDRIVEN"].map((s) => h("option", { value: s }, s || "redriven or not")),
  );
  const input = h("textarea", { id: "start-input", rows: 4 }, "{}");
  const name = h("input", { id: "start-name", placeholder: "name (optional)" });
  const startMsg = h("div");
  main.replaceChildren(
    h("h1", {}, sm.name, " ", h("span", { class: "muted" }, sm.type)),
    h("p", { class: "muted" }, arn),
    h(
      "section",
      { class: "cols" },
      h("div", {}, h("h2", {}, "Graph"), graph),
      h("div", {}, h("h2", {}, "Definition"), h("pre", { class: "json", id: "definition" }, JSON.stringify(definition, null, 2))),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Start execution"),
      name,
      input,
      h("button", { id: "start", onclick: () => startExecution(arn, name.value, input.value, startMsg) }, "Start execution"),
      startMsg,
    ),
    h(
      "section",
      { class: "cols" },
      h(
        "div",
        {},
        h("h2", {}, "Versions"),
        h("ul", { id: "versions" }, versions.map((v) => h("li", {}, v.stateMachineVersionArn.split(":").pop(), " ", h("span", { class: "muted" }, date(v.creationDate))))),
        versions.length ? "" : h("p", { class: "muted" }, "none"),
      ),
      h(
        "div",
        {},
        h("h2", {}, "Aliases"),
        h("ul", { id: "aliases" }, aliases.map((a) => h("li", {}, a.stateMachineAliasArn.split(":").pop()))),
        aliases.length ? "" : h("p", { class: "muted" }, "none"),
      ),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Executions"),
      h("div", { class: "toolbar" }, status, redrive, h("button", { id: "bulk-redrive", onclick: () => bulkRedrive(arn, status.value, redrive.value, executions) }, "Bulk redrive this filter (dry run first)")),
      h("div", { id: "bulk-plan" }),
      executions,
    ),
  );
  drawGraph(graph, buildGraph(definition, { state: () => undefined, iteration: () => undefined }));
  const refresh = () => listExecutions(executions, { stateMachineArn: arn }, status.value, redrive.value);
  status.addEventListener("change", refresh);
  redrive.addEventListener("change", refresh);
  await refresh();
}

async function startExecution(arn, name, input, where) {
  where.replaceChildren();
  try {
    JSON.parse(input);
    const body = { stateMachineArn: arn, input };
    if (name) body.name = name;
    const started = await call("StartExecution", body);
    location.hash = `#/exec/${enc(started.executionArn)}`;
  } catch (e) {
    showError(where, e);
  }
}

// A paged list of executions (of a state machine or a Map Run).
async function listExecutions(where, scope, statusFilter, redriveFilter, nextToken) {
  const body = { ...scope, maxResults: 50 };
  if (statusFilter) body.statusFilter = statusFilter;
  if (redriveFilter) body.redriveFilter = redriveFilter;
  if (nextToken) body.nextToken = nextToken;
  const page = await call("ListExecutions", body);
  const rows = page.executions.map((x) =>
    h(
      "tr",
      { "data-arn": x.executionArn, "data-status": x.status },
      h("td", {}, h("a", { href: `#/exec/${enc(x.executionArn)}` }, x.name)),
      h("td", {}, badge(x.status)),
      h("td", {}, x.redriveCount ? `redriven ${x.redriveCount}×` : ""),
      h("td", {}, date(x.startDate)),
      h("td", {}, date(x.stopDate)),
    ),
  );
  const more = page.nextToken
    ? h("button", { class: "more", onclick: () => listExecutions(where, scope, statusFilter, redriveFilter, page.nextToken) }, "Next page")
    : "";
  where.replaceChildren(
    h(
      "table",
      { class: "executions" },
      h("thead", {}, h("tr", {}, ["Name", "Status", "Redrives", "Started", "Stopped"].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows),
    ),
    page.executions.length ? "" : h("p", { class: "muted" }, "No executions match."),
    more,
  );
}

// The statuses Stepwise.BulkRedrive selects by (its default, unset: FAILED, TIMED_OUT, ABORTED).
const BULK_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED", "RUNNING"];

// Bulk redrive of the executions the filter selects, with Stepwise.BulkRedrive: a dry run that
// lists what a redrive would do to each, then, once confirmed, the batch, followed in the page
// with Stepwise.DescribeBulkRedrive until it completes.
async function bulkRedrive(arn, statusFilter, redriveFilter, where) {
  const plan = document.getElementById("bulk-plan");
  plan.replaceChildren();
  const body = { stateMachineArn: arn };
  try {
    if (statusFilter && !BULK_STATUSES.includes(statusFilter)) throw new Error(`A bulk redrive selects by ${BULK_STATUSES.join(", ")}, not ${statusFilter}.`);
    if (statusFilter) body.statusFilter = [statusFilter];
    if (redriveFilter === "REDRIVEN") body.minRedriveCount = 1;
    if (redriveFilter === "NOT_REDRIVEN") body.maxRedriveCount = 0;
    const dry = await call("BulkRedrive", { ...body, dryRun: true }, "Stepwise");
    const confirm = h("button", { id: "bulk-confirm", disabled: !dry.redrivable, onclick: () => runBulkRedrive(arn, body, plan, where, statusFilter, redriveFilter) }, `Redrive ${dry.redrivable} executions`);
    plan.replaceChildren(
      h("p", { id: "bulk-summary" }, `Dry run: ${dry.selected} selected, ${dry.redrivable} redrivable.`),
      h(
        "table",
        { class: "executions", id: "bulk-dry-run" },
        h("thead", {}, h("tr", {}, ["Execution", "Status", "Redrives", "A redrive would run again"].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          dry.executions.map((x) =>
            h(
              "tr",
              { "data-arn": x.executionArn, "data-redrivable": String(x.redrivable) },
              h("td", {}, h("a", { href: `#/exec/${enc(x.executionArn)}` }, x.executionArn.split(":").pop())),
              h("td", {}, badge(x.status)),
              h("td", {}, x.redriveCount || ""),
              h("td", { class: "reruns" }, x.redrivable ? `${(x.reruns || []).join(", ")}${x.rerunsTotal > (x.reruns || []).length ? ` (${x.rerunsTotal} in all)` : ""}` : `not redrivable: ${x.notRedrivableReason || ""}`),
            ),
          ),
        ),
      ),
      h("div", { class: "toolbar" }, confirm, h("button", { onclick: () => plan.replaceChildren() }, "Cancel")),
    );
  } catch (e) {
    showError(plan, e);
  }
}

async function runBulkRedrive(arn, body, plan, where, statusFilter, redriveFilter) {
  const batchToken = `console-${crypto.randomUUID()}`;
  const progress = h("div", { class: "banner", id: "bulk-result" }, "Redriving…");
  plan.replaceChildren(progress);
  try {
    await call("BulkRedrive", { ...body, batchToken }, "Stepwise");
    let report;
    for (;;) {
      report = await call("DescribeBulkRedrive", { batchToken, maxResults: 100 }, "Stepwise");
      if (report.status === "COMPLETED" || !showing(arn)) break;
      progress.textContent = `Redriving: ${report.redriven} of ${report.total} redriven, ${report.pending} pending.`;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    const refused = report.executions.filter((x) => x.outcome === "REFUSED");
    progress.replaceChildren(
      h("span", { id: "bulk-outcome", "data-status": report.status }, `Batch ${batchToken}: ${report.redriven} of ${report.total} redriven, ${report.refused} refused.`),
      refused.map((x) => h("div", {}, `${x.executionArn.split(":").pop()}: ${x.error}: ${x.cause}`)),
    );
    await listExecutions(where, { stateMachineArn: arn }, statusFilter, redriveFilter);
  } catch (e) {
    showError(plan, e);
  }
}

// ---------------------------------------------------------------- execution

// The events the graph is drawn from: the whole history when it fits in a page, else its
// first and its latest page.
async function graphEvents(arn) {
  const first = await call("GetExecutionHistory", { executionArn: arn, maxResults: GRAPH_PAGE });
  if (!first.nextToken) return { events: first.events, partial: false };
  const last = await call("GetExecutionHistory", { executionArn: arn, maxResults: GRAPH_PAGE, reverseOrder: true });
  const seen = new Set(first.events.map((e) => e.id));
  const tail = last.events.filter((e) => !seen.has(e.id)).reverse();
  return { events: first.events.concat(tail), partial: true };
}

async function executionPage(arn) {
  const view = { arn, selected: null, iterations: {}, tableToken: [], tableReverse: false, filter: "all" };
  main.replaceChildren(
    h("div", { id: "exec-head" }),
    h("div", { class: "toolbar", id: "actions" }),
    h(
      "section",
      { class: "cols" },
      h("div", {}, h("h2", {}, "Graph"), legend(), h("div", { id: "iterations" }), h("div", { class: "graph-box", id: "graph" })),
      h("div", { id: "details" }),
    ),
    h("section", { id: "io" }),
    h("section", { id: "maps" }),
    h("section", {}, h("h2", {}, "Events"), h("div", { class: "toolbar", id: "event-tools" }), h("div", { id: "events" })),
  );
  await refreshExecution(view);
  await eventTable(view);
}

async function refreshExecution(view) {
  const x = await call("DescribeExecution", { executionArn: view.arn });
  try {
    // A redrive onto another definition (Stepwise.RedriveExecutionFromState) changes what the
    // execution runs: read it again after each redrive, with the last redrive that changed
    // the state, the input or the definition (Stepwise.DescribeExecutionRedrives).
    const redrives = x.redriveCount || 0;
    if (view.definitionAt !== redrives) {
      const [answer, described] = await Promise.all([
        call("DescribeStateMachineForExecution", { executionArn: view.arn }),
        redrives ? call("DescribeExecutionRedrives", { executionArn: view.arn }, "Stepwise") : {},
      ]);
      view.definition = JSON.parse(answer.definition);
      view.changed = described.lastChangedRedrive;
      view.definitionAt = redrives;
    }
    const { events, partial } = await graphEvents(view.arn);
    view.execution = x;
    view.model = analyze(events, view.definition);
    view.byId = new Map(events.map((e) => [e.id, e]));
    view.partial = partial;
    renderHead(view);
    renderActions(view);
    renderGraph(view);
    renderDetails(view);
    await renderMapRuns(view);
  } finally {
    // After the rendering (refreshes never overlap), and even if it failed.
    if (x.status === "RUNNING") pollExecution(view);
  }
}

// Refreshes a running execution's page every POLL_MS while it is shown: one chain of timers
// (an action's own refresh replaces it), kept going when a refresh fails (a busy server).
function pollExecution(view) {
  clearTimeout(timer);
  if (!showing(view.arn)) return;
  timer = setTimeout(async () => {
    try {
      await refreshExecution(view);
      await eventTable(view, true);
    } catch {
      pollExecution(view);
    }
  }, POLL_MS);
}

function legend() {
  const item = (status, label) => h("span", { class: `legend-item status-${status}` }, label);
  return h(
    "div",
    { class: "legend" },
    item("succeeded", "succeeded"),
    item("failed", "failed"),
    item("caught", "caught"),
    item("running", "running"),
    item("aborted", "aborted"),
    item("notreached", "not reached"),
    h("span", { class: "legend-item rerun" }, "ran again after a redrive"),
  );
}

function renderHead(view) {
  const x = view.execution;
  const head = document.getElementById("exec-head");
  const failing = failingState(view.model);
  head.replaceChildren(
    h("h1", {}, x.name, " ", h("span", { id: "exec-status" }, badge(x.status))),
    h(
      "p",
      { class: "muted" },
      "State machine ",
      h("a", { href: `#/sm/${enc(x.stateMachineArn)}` }, x.stateMachineArn.split(":").pop()),
      ` · started ${date(x.startDate)}`,
      x.stopDate ? ` · stopped ${date(x.stopDate)}` : "",
      " · redrives ",
      h("span", { id: "redrive-count" }, String(x.redriveCount || 0)),
      x.redriveStatus ? ` · ${x.redriveStatus}` : "",
    ),
    x.error || x.cause
      ? h(
          "div",
          { class: "banner error", id: "error-banner", role: "alert" },
          h("strong", {}, x.error || ""),
          " ",
          x.cause || "",
          failing ? h("button", { class: "link", id: "goto-failed", onclick: () => select(view, failing.name, failing.lane) }, `Show ${failing.name}`) : "",
        )
      : "",
    view.partial ? h("p", { class: "muted" }, `The graph shows the first and latest ${GRAPH_PAGE} events of ${x.historyLength ?? "many"}.`) : "",
  );
}

function renderActions(view) {
  const x = view.execution;
  const where = document.getElementById("actions");
  const msg = h("span", { id: "action-msg" });
  const act = (label, id, enabled, run) =>
    h(
      "button",
      {
        id,
        disabled: !enabled,
        onclick: async () => {
          msg.replaceChildren();
          try {
            await run();
          } catch (e) {
            showError(msg, e);
            // The action may have been applied even if the refresh after it failed.
            pollExecution(view);
          }
        },
      },
      label,
    );
  where.replaceChildren(
    act("Stop", "stop", x.status === "RUNNING", async () => {
      await call("StopExecution", { executionArn: view.arn });
      await refreshExecution(view);
    }),
    act("Redrive", "redrive", x.redriveStatus === "REDRIVABLE", async () => {
      await call("RedriveExecution", { executionArn: view.arn, clientToken: `console-${crypto.randomUUID()}` });
      await refreshExecution(view);
      await eventTable(view, true);
    }),
    act("Start again", "start-again", true, async () => {
      const started = await call("StartExecution", { stateMachineArn: x.stateMachineArn, input: x.input });
      location.hash = `#/exec/${enc(started.executionArn)}`;
    }),
    act("Export history", "export", true, async () => {
      const events = await all("GetExecutionHistory", { executionArn: view.arn, maxResults: 1000 }, "events", 100000);
      const blob = new Blob([JSON.stringify({ events }, null, 2)], { type: "application/json" });
      const a = h("a", { href: URL.createObjectURL(blob), download: `${x.name}-history.json` });
      a.click();
    }),
    msg,
  );
  const io = document.getElementById("io");
  const c = view.changed;
  io.replaceChildren(
    h("div", { class: "cols" }, h("div", {}, h("h2", {}, "Input"), h("pre", { class: "json", id: "exec-input" }, pretty(x.input))), h("div", {}, h("h2", {}, "Output"), h("pre", { class: "json", id: "exec-output" }, pretty(x.output)))),
    c
      ? h(
          "div",
          { id: "changed-redrive" },
          h("h2", {}, `Redrive ${c.redriveCount}`, c.statePath ? ` from ${c.statePath}` : "", c.definition ? ` onto ${c.definition}` : ""),
          c.input === undefined
            ? ""
            : h(
                "div",
                { class: "cols" },
                h("div", {}, h("h3", {}, "Input it had"), h("pre", { class: "json", id: "changed-previous-input" }, c.previousInput === undefined ? "unknown" : pretty(c.previousInput))),
                h("div", {}, h("h3", {}, "Input it was given"), h("pre", { class: "json", id: "changed-input" }, pretty(c.input))),
              ),
        )
      : "",
  );
}

// The Map iteration shown for each Map: the picked one, else the first that failed or was
// aborted, else the first.
function iterationOf(view, lane, name) {
  const key = `${lane}|${name}`;
  if (key in view.iterations) return view.iterations[key];
  const seen = view.model.iterations.get(key);
  if (!seen || !seen.size) return undefined;
  for (const [i, phase] of seen) if (phase === "Failed" || phase === "Aborted") return i;
  return Math.min(...seen.keys());
}

function renderGraph(view) {
  const model = view.model;
  const g = buildGraph(view.definition, {
    state: (lane, name) => model.states.get(`${lane}|${name}`),
    iteration: (lane, name) => iterationOf(view, lane, name),
  });
  drawGraph(document.getElementById("graph"), g, (name, lane) => select(view, name, lane), view.selected);
  const pickers = [];
  for (const [key, seen] of model.iterations) {
    const [lane, name] = key.split("|");
    const current = iterationOf(view, lane, name);
    const failedOnly = view.failedIterations;
    const options = [...seen].filter(([, phase]) => !failedOnly || phase === "Failed" || phase === "Aborted");
    const picker = h(
      "select",
      {
        class: "iteration-picker",
        "data-map": name,
        onchange: (e) => {
          view.iterations[key] = Number(e.target.value);
          renderGraph(view);
        },
      },
      options.slice(0, 1000).map(([i, phase]) => h("option", { value: i, selected: i === current }, `#${i} ${phase}`)),
    );
    const toggle = h("label", {}, h("input", { type: "checkbox", checked: failedOnly, onchange: (e) => { view.failedIterations = e.target.checked; renderGraph(view); } }), " failed and aborted only");
    pickers.push(h("div", { class: "toolbar" }, `Map ${name}${lane ? ` (in ${lane})` : ""}: iteration `, picker, toggle));
  }
  document.getElementById("iterations").replaceChildren(...pickers);
}

function findState(machine, name) {
  const states = (machine && machine.States) || {};
  if (states[name]) return states[name];
  for (const s of Object.values(states)) {
    for (const b of [...(s.Branches || []), s.ItemProcessor, s.Iterator]) {
      const found = b && findState(b, name);
      if (found) return found;
    }
  }
  return undefined;
}

function select(view, name, lane) {
  view.selected = { name, lane };
  renderGraph(view);
  renderDetails(view);
}

const IO_FIELDS = ["InputPath", "Parameters", "Arguments", "ResultSelector", "ResultPath", "OutputPath", "Output", "Assign", "Retry", "Catch"];

function renderDetails(view) {
  const where = document.getElementById("details");
  if (!view.selected) {
    where.replaceChildren(h("h2", {}, "State"), h("p", { class: "muted" }, "Select a state in the graph."));
    return;
  }
  const { name, lane } = view.selected;
  const r = view.model.states.get(`${lane}|${name}`) || { status: "notreached", events: [], runs: 0 };
  const def = findState(view.definition, name) || {};
  const run = r.events.slice(r.runStart || 0);
  const tries = attempts(run);
  const steps = h("div", { id: "state-steps" });
  where.replaceChildren(
    ...[
    h("h2", {}, name, " ", badge(r.status)),
    h("p", { class: "muted" }, `${def.Type || ""}${lane ? ` · ${lane}` : ""} · entered ${r.runs}×${tries.length > 1 ? ` · ${tries.length - 1} retries` : ""}${r.rerun ? " · ran again after a redrive" : ""}`),
    r.error || r.cause ? h("div", { class: "banner error", id: "state-error" }, h("strong", {}, r.error || ""), " ", r.cause || "") : "",
    h("h3", {}, "Input"),
    h("pre", { class: "json", id: "state-input" }, pretty(r.input)),
    h("h3", {}, "Output"),
    h("pre", { class: "json", id: "state-output" }, pretty(r.output)),
    h("h3", {}, "Input and output at each step"),
    steps,
    tries.length
      ? [
          h("h3", {}, "Attempts"),
          h(
            "table",
            { class: "events", id: "state-attempts" },
            h("thead", {}, h("tr", {}, ["#", "Outcome", "Error", "Cause"].map((t) => h("th", {}, t)))),
            h("tbody", {}, tries.map((a, i) => h("tr", { class: a.failed ? "failed" : "", "data-outcome": a.outcome }, h("td", {}, i + 1), h("td", {}, a.outcome), h("td", {}, a.error || ""), h("td", {}, a.cause || "")))),
          ),
        ]
      : "",
    h("h3", {}, "Definition"),
    h("pre", { class: "json" }, JSON.stringify(Object.fromEntries(IO_FIELDS.filter((f) => f in def).map((f) => [f, def[f]])), null, 2)),
    h("h3", {}, "Events"),
    h("table", { class: "events", id: "state-events" }, h("tbody", {}, r.events.map(eventRow))),
    redriveFromState(view, name, lane),
    ].flat(),
  );
  stepsOf(view, r, def, run).then(
    (rows) => steps.replaceChildren(...[rows].flat()),
    (e) => steps.replaceChildren(h("p", { class: "muted", id: "steps-unavailable" }, String(e.message || e))),
  );
}

// The extension's path to a state (docs/redrive-extensions.md: `Fan/3/Work`, a Map's iteration
// or a Parallel's branch index before each state inside it), from its graph lane (`Fan[3]/`,
// Map iterations only) and the definition (the branch a state is in); undefined when the lane
// names no iteration (none ran, or a Distributed Map, whose states run in child executions).
function statePath(definition, name, lane) {
  const chain = enclosing(definition, name) || [];
  const parts = [];
  let rest = lane || "";
  for (const c of chain) {
    if (c.type === "Parallel") {
      parts.push(c.name, String(c.branch));
      continue;
    }
    const prefix = `${c.name}[`;
    const end = rest.indexOf("]/", prefix.length);
    const index = rest.slice(prefix.length, end);
    if (!rest.startsWith(prefix) || end < 0 || !/^\d+$/.test(index)) return undefined;
    parts.push(c.name, index);
    rest = rest.slice(end + 2);
  }
  return [...parts, name].join("/");
}

// The Parallel and Map states around the state `name`, outermost first, each with the index
// of its branch that holds it; undefined when `machine` does not hold it.
function enclosing(machine, name) {
  for (const [n, s] of Object.entries((machine && machine.States) || {})) {
    if (n === name) return [];
    const lanes = s.Type === "Parallel" ? s.Branches || [] : s.Type === "Map" ? [s.ItemProcessor || s.Iterator] : [];
    for (const [branch, b] of lanes.entries()) {
      const inner = b && enclosing(b, name);
      if (inner) return [{ name: n, type: s.Type, branch }, ...inner];
    }
  }
  return undefined;
}

// "Redrive from this state" (Stepwise.RedriveExecutionFromState) for an ended execution: the
// state is entered afresh, with the input it had or a new one, on the definition the
// execution ran or the state machine's current one. The server's refusal is shown here.
function redriveFromState(view, name, lane) {
  const x = view.execution;
  if (x.status === "RUNNING" || x.status === "PENDING_REDRIVE") return "";
  const path = statePath(view.definition, name, lane);
  if (path === undefined) return [h("h3", {}, "Redrive from this state"), h("p", { class: "muted" }, "No Map iteration is shown for this state: pick one that ran (a Distributed Map's states run in its Map Run's child executions).")];
  const input = h("textarea", { id: "rfs-input", rows: 3, placeholder: "new input (optional: by default the input it had)" });
  const definition = h("select", { id: "rfs-definition" }, h("option", { value: "" }, "the definition it ran"), h("option", { value: "CURRENT" }, "the state machine's current definition"));
  const msg = h("div", { id: "rfs-msg" });
  const run = async () => {
    msg.replaceChildren();
    try {
      const body = { executionArn: view.arn, statePath: path, clientToken: `console-${crypto.randomUUID()}` };
      if (input.value.trim()) {
        JSON.parse(input.value);
        body.input = input.value;
      }
      if (definition.value) body.definition = definition.value;
      await call("RedriveExecutionFromState", body, "Stepwise");
    } catch (e) {
      showError(msg, e);
      return;
    }
    try {
      await refreshExecution(view);
      await eventTable(view, true);
    } catch (e) {
      showError(document.getElementById("action-msg"), e);
      // The redrive was applied even if the refresh after it failed.
      pollExecution(view);
    }
  };
  return [
    h("h3", {}, "Redrive from this state"),
    h("p", { class: "muted" }, "Enters ", h("code", { id: "rfs-path" }, path), " afresh and runs the states after it again; the states before it are not run again."),
    input,
    h("div", { class: "toolbar" }, definition, h("button", { id: "redrive-from-state", onclick: run }, "Redrive from this state")),
    msg,
  ];
}

// A task state's attempts in one run: each `…Scheduled` event with the event that ended it.
function attempts(run) {
  const out = [];
  for (const e of run) {
    if (e.type.endsWith("Scheduled")) out.push({ outcome: "running", failed: false });
    else if (out.length && /(Succeeded|Failed|TimedOut|StartFailed|ScheduleFailed|SubmitFailed)$/.test(e.type) && !e.type.endsWith("StateFailed")) {
      const d = details(e);
      Object.assign(out.at(-1), { outcome: e.type, failed: !e.type.endsWith("Succeeded"), error: d.error, cause: d.cause });
    }
  }
  return out;
}

// TestState's inspection steps, in the order the state applies them.
const STEPS = [
  ["input", "Input"],
  ["afterInputPath", "After InputPath"],
  ["afterItemsPath", "After ItemsPath"],
  ["afterItemSelector", "After ItemSelector (each item)"],
  ["afterParameters", "After Parameters"],
  ["afterArguments", "After Arguments"],
  ["result", "Result"],
  ["afterResultSelector", "After ResultSelector"],
  ["afterResultPath", "After ResultPath"],
  ["output", "Output (after OutputPath)"],
];
const replays = new Map();

// The state's input and output at each step of its latest run, from TestState (inspection
// level DEBUG) run on the recorded input, with the recorded result or error as the mock (a
// Task's; a Parallel's or inline Map's, rebuilt from its lanes' outputs: containers.js):
// the engine's own evaluator, reached through the API, replays what the history does not
// record. The replayed output is compared with the recorded one.
async function stepsOf(view, r, def, run) {
  if (r.input === undefined) return h("p", { class: "muted" }, "Not entered.");
  let container;
  if (def.Type === "Parallel" || def.Type === "Map") {
    container = containerRun(view.model, view.byId, view.execution, r, def, run);
    if (container.reason) return h("p", { class: "muted", id: "steps-unavailable" }, container.reason);
  }
  if (def.Type === "Task" && !taskEnd(run)) return h("p", { class: "muted", id: "steps-unavailable" }, "The task has not finished.");
  const key = `${r.lane}|${r.name}|${r.enteredId}|${run.length}`;
  if (!replays.has(key)) replays.set(key, replay(view, r, def, run, container));
  const answer = await replays.get(key);
  // What TestState does not report of a Parallel or Map, as the history recorded it.
  const replayed = answer.inspectionData || {};
  const data = { ...laneSteps(view, def, container), ...replayed };
  const rows = STEPS.filter(([k]) => (k === "output" ? answer.output : data[k]) !== undefined).map(([k, label]) => {
    const recordedStep = k !== "output" && !(k in replayed);
    return h(
      "tr",
      { "data-step": k, "data-from": recordedStep ? "history" : "replay" },
      h("th", {}, label, recordedStep ? h("span", { class: "muted" }, " (recorded)") : ""),
      h("td", {}, h("pre", { class: "json" }, pretty(k === "output" ? answer.output : data[k]))),
    );
  });
  const recorded = r.output === undefined ? undefined : same(answer.output, r.output);
  return [
    h("table", { class: "steps", id: "steps" }, h("tbody", {}, rows)),
    answer.status === "FAILED" ? h("div", { class: "banner error" }, h("strong", {}, answer.error || ""), " ", answer.cause || "") : "",
    recorded === undefined
      ? ""
      : h(
          "p",
          { class: recorded ? "muted" : "banner", id: "steps-check", "data-matches": String(recorded) },
          recorded ? "The replayed output is the recorded output." : "The replayed output differs from the recorded one (the state reads something the history does not keep); the recorded output above is what ran.",
        ),
  ];
}

// A succeeded Parallel's or Map's steps that come from its lanes: the result (the mock), a
// Parallel's branch input (after Parameters or Arguments), and each Map iteration's input
// when an ItemSelector (or a Map's Parameters) made it.
function laneSteps(view, def, container) {
  if (!container || !container.result) return {};
  const text = (v) => JSON.stringify(v ?? null);
  const steps = { result: text(container.result) };
  const jsonata = (def.QueryLanguage || view.definition.QueryLanguage) === "JSONata";
  if (def.Type === "Parallel" && container.inputs.length) steps[jsonata ? "afterArguments" : "afterParameters"] = text(container.inputs[0]);
  if (def.Type === "Map" && (def.ItemSelector !== undefined || def.Parameters !== undefined)) steps.afterItemSelector = text(container.inputs);
  return steps;
}

// The event that ended the run's last task attempt.
function taskEnd(run) {
  return run.filter((e) => /(Succeeded|Failed|TimedOut)$/.test(e.type) && !/State(Entered|Exited|Failed)$/.test(e.type)).at(-1);
}

function same(a, b) {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

function replay(view, r, def, run, container) {
  const x = view.execution;
  const body = {
    definition: JSON.stringify(view.definition),
    stateName: r.name,
    input: r.input,
    inspectionLevel: "DEBUG",
    context: JSON.stringify(contextOf(x, r, run)),
  };
  const vars = Object.entries(r.variables || {}).map(([k, v]) => {
    try {
      return [k, JSON.parse(v)];
    } catch {
      return [k, v];
    }
  });
  if (vars.length) body.variables = JSON.stringify(Object.fromEntries(vars));
  if (def.Type === "Task") {
    const end = taskEnd(run);
    const d = details(end);
    body.mock = end.type.endsWith("Succeeded")
      ? { result: d.output ?? "null", fieldValidationMode: "NONE" }
      : { errorOutput: { error: d.error || "States.TaskFailed", cause: d.cause || "" } };
    // The retries spent: a last failure that was not retried again is caught or fails.
    if (!end.type.endsWith("Succeeded")) body.stateConfiguration = { retrierRetryCount: attempts(run).length - 1 };
  } else if (container) {
    body.mock = container.error ? { errorOutput: container.error } : { result: JSON.stringify(container.result) };
    if (container.error) body.stateConfiguration = { retrierRetryCount: container.retries };
  }
  return call("TestState", body);
}

// The context object the state saw, as far as the history and DescribeExecution tell it.
function contextOf(x, r, run) {
  const iso = (t) => new Date(t * 1000).toISOString();
  const input = (() => {
    try {
      return JSON.parse(x.input);
    } catch {
      return {};
    }
  })();
  const execution = { Id: x.executionArn, Input: input, Name: x.name, StartTime: iso(x.startDate) };
  if (x.roleArn) execution.RoleArn = x.roleArn;
  if (x.redriveCount) execution.RedriveCount = x.redriveCount;
  return {
    Execution: execution,
    StateMachine: { Id: x.stateMachineArn, Name: x.stateMachineArn.split(":").pop() },
    State: { Name: r.name, EnteredTime: iso(r.enteredTime), RetryCount: Math.max(0, attempts(run).length - 1) },
  };
}

function eventRow(e) {
  const d = details(e);
  const failed = /Failed|TimedOut|Aborted/.test(e.type);
  return h(
    "tr",
    { class: failed ? "failed" : "", "data-type": e.type },
    h("td", {}, e.id),
    h("td", {}, e.type),
    h("td", {}, date(e.timestamp)),
    h("td", { class: "detail" }, d.name || d.error || d.resource || ""),
  );
}

const FILTERS = {
  all: () => true,
  failed: (e) => /Failed|TimedOut|Aborted/.test(e.type),
  states: (e) => /State(Entered|Exited)$/.test(e.type),
  tasks: (e) => /^(Activity|LambdaFunction|Task)/.test(e.type),
};

// The paged event table: one GetExecutionHistory page at a time, filtered in the page.
async function eventTable(view, keep) {
  const tools = document.getElementById("event-tools");
  const where = document.getElementById("events");
  if (!keep) view.tableToken = [undefined];
  const token = view.tableToken.at(-1);
  const body = { executionArn: view.arn, maxResults: TABLE_PAGE, reverseOrder: view.tableReverse };
  if (token) body.nextToken = token;
  const page = await call("GetExecutionHistory", body);
  const filter = h(
    "select",
    { id: "event-filter", onchange: (e) => { view.filter = e.target.value; eventTable(view, true); } },
    Object.keys(FILTERS).map((f) => h("option", { value: f, selected: f === view.filter }, f)),
  );
  tools.replaceChildren(
    filter,
    h("label", {}, h("input", { type: "checkbox", checked: view.tableReverse, onchange: (e) => { view.tableReverse = e.target.checked; eventTable(view); } }), " newest first"),
    h("button", { disabled: view.tableToken.length < 2, onclick: () => { view.tableToken.pop(); eventTable(view, true); } }, "Previous"),
    h("button", { id: "events-next", disabled: !page.nextToken, onclick: () => { view.tableToken.push(page.nextToken); eventTable(view, true); } }, "Next"),
    h("span", { class: "muted" }, `page ${view.tableToken.length}`),
  );
  const rows = page.events.filter(FILTERS[view.filter] || FILTERS.all);
  where.replaceChildren(
    h("table", { class: "events", id: "event-table" }, h("thead", {}, h("tr", {}, ["Id", "Type", "Time", "Detail"].map((t) => h("th", {}, t)))), h("tbody", {}, rows.map(eventRow))),
  );
}

async function renderMapRuns(view) {
  const where = document.getElementById("maps");
  const runs = await all("ListMapRuns", { executionArn: view.arn }, "mapRuns", 100);
  where.replaceChildren(
    runs.length ? h("h2", {}, "Map Runs") : "",
    h("ul", { id: "map-runs" }, runs.map((r) => h("li", {}, h("a", { href: `#/maprun/${enc(r.mapRunArn)}` }, r.mapRunArn.split(":").slice(-2).join(":"))))),
  );
}

// ---------------------------------------------------------------- Map Run

async function mapRunPage(arn) {
  const run = await call("DescribeMapRun", { mapRunArn: arn });
  const counts = (title, c, id) =>
    h(
      "table",
      { class: "counts", id },
      h("caption", {}, title),
      h("tbody", {}, Object.entries(c || {}).map(([k, v]) => h("tr", { "data-count": k }, h("th", {}, k), h("td", {}, v)))),
    );
  const children = h("div", { id: "children" });
  const status = h(
    "select",
    { id: "status-filter" },
    ["", "RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"].map((s) => h("option", { value: s }, s || "any status")),
  );
  main.replaceChildren(
    h("h1", {}, "Map Run ", h("span", { id: "maprun-status" }, badge(run.status))),
    h("p", { class: "muted" }, arn),
    h("p", {}, "Execution ", h("a", { href: `#/exec/${enc(run.executionArn)}` }, run.executionArn.split(":").pop()), ` · max concurrency ${run.maxConcurrency} · redrives ${run.redriveCount || 0}`),
    h("section", { class: "cols" }, counts("Items", run.itemCounts, "item-counts"), counts("Child executions", run.executionCounts, "execution-counts")),
    h("section", {}, h("h2", {}, "Child executions"), h("div", { class: "toolbar" }, status), children),
  );
  const refresh = () => listExecutions(children, { mapRunArn: arn }, status.value, "");
  status.addEventListener("change", refresh);
  await refresh();
  if (run.status === "RUNNING") timer = setTimeout(route, POLL_MS * 2);
}

// ---------------------------------------------------------------- activities

// Each activity (ListActivities, DescribeActivity) with the tasks that wait for a worker
// (Stepwise.ListActivityTasks: AWS has no operation that lists them). Refreshed while shown.
async function activitiesPage() {
  const activities = await all("ListActivities", {}, "activities");
  const pending = await Promise.all(
    activities.map((a) => all("ListActivityTasks", { activityArn: a.activityArn, maxResults: 100 }, "tasks", TABLE_PAGE, "Stepwise")),
  );
  const described = await Promise.all(activities.map((a) => call("DescribeActivity", { activityArn: a.activityArn })));
  main.replaceChildren(
    h("h1", {}, "Activities"),
    activities.length ? "" : h("p", { class: "muted" }, "No activities."),
    ...activities.map((a, i) =>
      h(
        "section",
        { class: "activity", "data-arn": a.activityArn, "data-pending": pending[i].length },
        h("h2", {}, a.name, " ", h("span", { class: "muted" }, `${pending[i].length} pending`)),
        h("p", { class: "muted" }, `${a.activityArn} · created ${date(described[i].creationDate)}`),
        pending[i].length
          ? h(
              "table",
              { class: "pending-tasks" },
              h("thead", {}, h("tr", {}, ["Execution", "Scheduled", "Input"].map((t) => h("th", {}, t)))),
              h(
                "tbody",
                {},
                pending[i].map((t) =>
                  h(
                    "tr",
                    { "data-execution": t.executionArn },
                    h("td", {}, h("a", { href: `#/exec/${enc(t.executionArn)}` }, t.executionArn.split(":").pop())),
                    h("td", {}, date(t.scheduledDate)),
                    h("td", {}, h("code", {}, t.input)),
                  ),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No task waits for a worker."),
      ),
    ),
  );
  if (location.hash === "#/activities") timer = setTimeout(route, POLL_MS * 2);
}

window.addEventListener("hashchange", route);
route();
