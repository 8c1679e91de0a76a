// A state machine definition as a graph: dagre lays it out (Parallel branches and Map
// iterations as nested clusters), this module draws it as SVG, each state coloured by what
// happened to it.

import dagre from "./vendor/dagre.esm.js";

const SVG = "http://www.w3.org/2000/svg";

// `view.state(lane, name)` → { status, runs, rerun } or undefined (not reached);
// `view.iteration(lane, mapName)` → the Map iteration shown (a number) or undefined.
export function buildGraph(definition, view) {
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: true });
  g.setGraph({ rankdir: "TB", nodesep: 24, ranksep: 36, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  g.setNode("::start", { label: "Start", kind: "terminal", width: 64, height: 28 });
  g.setNode("::end", { label: "End", kind: "terminal", width: 64, height: 28 });
  const top = addMachine(g, definition, null, "", view);
  if (top.start) g.setEdge("::start", top.start);
  for (const e of top.ends) g.setEdge(e, "::end");
  dagre.layout(g);
  return g;
}

function stateNode(name, type, lane, view) {
  const seen = view.state(lane, name) || {};
  const status = seen.status || "notreached";
  return {
    label: name,
    sub: type,
    kind: "state",
    name,
    lane,
    status,
    runs: seen.runs || 0,
    rerun: Boolean(seen.rerun),
    width: Math.max(110, 7.5 * Math.max(name.length, type.length) + 28),
    height: 42,
  };
}

// Adds a machine's states (nested under `parent`) and returns its start node and the nodes its
// ends leave from.
function addMachine(g, machine, parent, lane, view) {
  const states = (machine && machine.States) || {};
  const exitOf = {};
  const ends = [];
  for (const [name, s] of Object.entries(states)) {
    const type = s.Type || "?";
    g.setNode(name, stateNode(name, type, lane, view));
    if (type === "Parallel" || type === "Map") {
      const cluster = `${name}::cluster`;
      g.setNode(cluster, { kind: "cluster", label: "" });
      if (parent) g.setParent(cluster, parent);
      g.setParent(name, cluster);
      const join = `${name}::join`;
      g.setNode(join, { kind: "join", width: 12, height: 12 });
      g.setParent(join, cluster);
      const processor = s.ItemProcessor || s.Iterator;
      const branches = type === "Parallel" ? s.Branches || [] : processor ? [processor] : [];
      const index = type === "Map" ? view.iteration(lane, name) : undefined;
      branches.forEach((branch, i) => {
        const box = `${name}::branch${i}`;
        const label =
          type === "Parallel" ? `branch ${i + 1}` : index === undefined ? "iterations" : `iteration #${index}`;
        g.setNode(box, { kind: "branch", label });
        g.setParent(box, cluster);
        const inner = type === "Map" ? `${lane}${name}[${index ?? "?"}]/` : lane;
        const r = addMachine(g, branch, box, inner, view);
        if (r.start) g.setEdge(name, r.start);
        for (const e of r.ends) g.setEdge(e, join);
      });
      if (!branches.length) g.setEdge(name, join);
      exitOf[name] = join;
    } else {
      if (parent) g.setParent(name, parent);
      exitOf[name] = name;
    }
  }
  for (const [name, s] of Object.entries(states)) {
    const from = exitOf[name];
    const next = [];
    if (s.Next) next.push([s.Next, ""]);
    if (s.Default) next.push([s.Default, "default"]);
    for (const c of s.Choices || []) if (c.Next) next.push([c.Next, "choice"]);
    for (const c of s.Catch || []) if (c.Next) next.push([c.Next, "catch"]);
    for (const [to, kind] of next) {
      if (states[to]) g.setEdge(from, to, { kind }, `${name}->${to}:${kind}`);
    }
    if (s.End || s.Type === "Succeed" || s.Type === "Fail") ends.push(from);
  }
  return { start: states[machine?.StartAt] ? machine.StartAt : null, ends };
}

function el(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function depth(g, id) {
  let d = 0;
  for (let p = g.parent(id); p; p = g.parent(p)) d++;
  return d;
}

// Draws `g` into `container`; a click on a state calls `onSelect(name, lane)`.
export function drawGraph(container, g, onSelect, selected) {
  const { width, height } = g.graph();
  const svg = el("svg", {
    class: "graph",
    width: Math.ceil(width),
    height: Math.ceil(height),
    viewBox: `0 0 ${Math.ceil(width)} ${Math.ceil(height)}`,
  });
  const boxes = g.nodes().filter((id) => ["cluster", "branch"].includes(g.node(id).kind));
  boxes.sort((a, b) => depth(g, a) - depth(g, b));
  for (const id of boxes) {
    const n = g.node(id);
    svg.append(
      el("rect", {
        class: n.kind,
        x: n.x - n.width / 2,
        y: n.y - n.height / 2,
        width: n.width,
        height: n.height,
        rx: 6,
      }),
    );
    if (n.label) svg.append(el("text", { class: "box-label", x: n.x - n.width / 2 + 6, y: n.y - n.height / 2 + 12 }, n.label));
  }
  for (const e of g.edges()) {
    const edge = g.edge(e);
    const points = (edge.points || []).map((p) => `${p.x},${p.y}`).join(" ");
    svg.append(el("polyline", { class: `edge ${edge.kind || ""}`, points, "marker-end": "url(#arrow)" }));
  }
  const defs = el("defs");
  const marker = el("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" });
  marker.append(el("path", { d: "M0,0 L10,5 L0,10 z", class: "arrowhead" }));
  defs.append(marker);
  svg.prepend(defs);
  for (const id of g.nodes()) {
    const n = g.node(id);
    if (!n || n.kind === "cluster" || n.kind === "branch") continue;
    if (n.kind === "join") {
      svg.append(el("circle", { class: "join", cx: n.x, cy: n.y, r: 5 }));
      continue;
    }
    if (n.kind === "terminal") {
      const t = el("g", { class: "terminal" });
      t.append(el("rect", { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height, rx: 14 }));
      t.append(el("text", { x: n.x, y: n.y + 4, "text-anchor": "middle" }, n.label));
      svg.append(t);
      continue;
    }
    const cls = ["state", `status-${n.status}`];
    if (n.rerun) cls.push("rerun");
    if (selected && selected.name === n.name) cls.push("selected");
    const node = el("g", {
      class: cls.join(" "),
      "data-state": n.name,
      "data-lane": n.lane,
      "data-status": n.status,
      "data-runs": n.runs,
      "data-rerun": n.rerun ? "true" : "false",
      tabindex: 0,
    });
    node.append(el("rect", { x: n.x - n.width / 2, y: n.y - n.height / 2, width: n.width, height: n.height, rx: 4 }));
    node.append(el("text", { class: "name", x: n.x, y: n.y - 2, "text-anchor": "middle" }, n.label));
    const sub = n.runs > 1 ? `${n.sub} · ran ${n.runs}×` : n.sub;
    node.append(el("text", { class: "sub", x: n.x, y: n.y + 13, "text-anchor": "middle" }, sub));
    node.addEventListener("click", () => onSelect && onSelect(n.name, n.lane));
    svg.append(node);
  }
  container.replaceChildren(svg);
}
