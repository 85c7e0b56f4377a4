// The Weir job dashboard: polls /api/v1/job once a second and renders it.
// Every value from the job (names, paths, messages) goes into the page as text (textContent),
// never as markup; the server's content security policy allows no inline script either.
"use strict";

const POLL_MS = 1000;
const SVG = "http://www.w3.org/2000/svg";

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function svg(tag, attrs) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function setText(id, text) {
  const e = document.getElementById(id);
  if (e) e.textContent = text;
}

function time(ms) {
  if (ms === null || ms === undefined) return "";
  return new Date(ms).toISOString().replace("T", " ").slice(0, 23) + " UTC";
}

function duration(ms) {
  if (ms === null || ms === undefined) return "";
  if (ms === 0) return "0 ms";
  if (ms < 1) return ms.toFixed(3) + " ms";
  if (ms < 1000) return ms.toFixed(1) + " ms";
  if (ms < 120000) return (ms / 1000).toFixed(2) + " s";
  return (ms / 60000).toFixed(1) + " min";
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) { n /= 1024; u += 1; }
  return (u === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[u];
}

function count(n) {
  return n === null || n === undefined ? "" : Number(n).toLocaleString("en-US");
}

function rate(n) {
  return n === null || n === undefined ? "…" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 });
}

function share(n) {
  return n === null || n === undefined ? "…" : n.toFixed(0);
}

function watermark(s) {
  if (s.end_of_input) return "end of input";
  if (s.watermark_millis === null || s.watermark_millis === undefined) return "none";
  return time(s.watermark_millis);
}

function alignmentPauses(s) {
  const parts = [];
  if (s.alignment_paused_ms > 0) parts.push(`held ${count(s.alignment_paused_ms)} ms`);
  if (s.paused_splits > 0) parts.push(`${s.paused_splits} split${s.paused_splits === 1 ? "" : "s"} paused`);
  return parts.length ? parts.join(", ") : "none";
}

const LEVELS = ["ok", "low", "high"];

function worstLevel(subtasks) {
  let worst = -1;
  for (const s of subtasks) worst = Math.max(worst, LEVELS.indexOf(s.backpressure));
  return worst < 0 ? "none" : LEVELS[worst];
}

function shorten(text, max) {
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}

function renderGraph(job) {
  const tasks = job.graph.tasks;
  const edges = job.graph.edges;
  const depth = new Map(tasks.map((t) => [t.id, 0]));
  // Longest path from a source: a task's column.
  for (let round = 0; round < tasks.length; round += 1) {
    for (const e of edges) {
      const d = (depth.get(e.from) || 0) + 1;
      if (d > (depth.get(e.to) || 0)) depth.set(e.to, d);
    }
  }
  const columns = new Map();
  for (const t of tasks) {
    const d = depth.get(t.id) || 0;
    if (!columns.has(d)) columns.set(d, []);
    columns.get(d).push(t);
  }
  const W = 300, H = 70, GX = 90, GY = 24, PAD = 12;
  const pos = new Map();
  let rows = 0;
  for (const [d, list] of columns) {
    list.forEach((t, i) => pos.set(t.id, { x: PAD + d * (W + GX), y: PAD + i * (H + GY) }));
    rows = Math.max(rows, list.length);
  }
  const width = PAD * 2 + columns.size * (W + GX) - GX;
  const height = PAD * 2 + rows * (H + GY) - GY;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
  const defs = svg("defs");
  const marker = svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" });
  marker.appendChild(svg("path", { d: "M 0 0 L 10 5 L 0 10 z", class: "arrow" }));
  defs.appendChild(marker);
  root.appendChild(defs);
  for (const e of edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2;
    const mx = (x1 + x2) / 2;
    const g = svg("g", { class: "edge" });
    g.appendChild(svg("path", { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, "marker-end": "url(#arrow)" }));
    const label = svg("text", { x: mx, y: (y1 + y2) / 2 - 6, "text-anchor": "middle", class: "edge-label" });
    label.textContent = e.partitioning;
    g.appendChild(label);
    root.appendChild(g);
  }
  for (const t of tasks) {
    const p = pos.get(t.id);
    const subtasks = job.subtasks.filter((s) => s.task === t.id);
    const level = worstLevel(subtasks);
    const busy = subtasks.filter((s) => s.busy_ms_per_second !== null);
    const busyAvg = busy.length ? busy.reduce((n, s) => n + s.busy_ms_per_second, 0) / busy.length / 10 : null;
    const outRate = subtasks.reduce((n, s) => n + (s.records_out_per_second || 0), 0);
    const inRate = subtasks.reduce((n, s) => n + (s.records_in_per_second || 0), 0);
    const g = svg("g", { class: `task bp-${level}`, transform: `translate(${p.x} ${p.y})` });
    g.dataset.taskId = t.id;
    const title = svg("title");
    title.textContent = `${t.name}\noperators: ${t.operators.join(", ") || "(none with a uid)"}`;
    g.appendChild(title);
    g.appendChild(svg("rect", { width: W, height: H, rx: 6 }));
    const name = svg("text", { x: 10, y: 20, class: "task-name" });
    name.textContent = shorten(t.name, 32);
    g.appendChild(name);
    const line1 = svg("text", { x: 10, y: 40, class: "task-detail" });
    line1.textContent = `${t.role} · parallelism ${t.parallelism} · back-pressure ${level}`;
    g.appendChild(line1);
    const line2 = svg("text", { x: 10, y: 58, class: "task-detail" });
    line2.textContent = `in ${rate(inRate)}/s · out ${rate(outRate)}/s · busy ${busyAvg === null ? "…" : busyAvg.toFixed(0) + "%"}`;
    g.appendChild(line2);
    root.appendChild(g);
  }
  document.getElementById("graph").replaceChildren(root);
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    if (c instanceof Node) tr.appendChild(c);
    else tr.appendChild(el("td", c));
  }
  return tr;
}

function cell(text, className) {
  return el("td", text, className);
}

function renderSubtasks(job) {
  const names = new Map(job.graph.tasks.map((t) => [t.id, t.name]));
  const rows = job.subtasks.map((s) => {
    const tr = row([
      cell(names.get(s.task) || s.task, "task"),
      cell(s.subtask),
      cell(count(s.records_in), "records-in"),
      cell(rate(s.records_in_per_second), "rate-in"),
      cell(count(s.records_out), "records-out"),
      cell(rate(s.records_out_per_second), "rate-out"),
      cell(share(s.busy_ms_per_second), "busy"),
      cell(share(s.idle_ms_per_second), "idle"),
      cell(share(s.backpressured_ms_per_second), "backpressured"),
      cell(s.backpressure || "…", `level bp-${s.backpressure || "none"}`),
      cell(watermark(s), "watermark"),
      cell(alignmentPauses(s), "alignment-pauses"),
    ]);
    tr.dataset.task = s.task;
    tr.dataset.subtask = String(s.subtask);
    return tr;
  });
  document.querySelector("#subtasks tbody").replaceChildren(...rows);
}

function renderCheckpoints(job) {
  const rows = job.checkpoints.slice(-100).reverse().map((c) => {
    const tr = row([
      cell(c.id, "id"),
      cell(c.kind),
      cell(c.status.replace("_", " "), `status status-${c.status}`),
      cell(time(c.trigger_millis)),
      cell(duration(c.duration_millis)),
      cell(bytes(c.size_bytes)),
      cell(duration(c.alignment_millis), "alignment"),
      cell(duration(c.start_delay_millis)),
      cell(c.failure_reason || "", "reason"),
    ]);
    tr.dataset.checkpoint = String(c.id);
    return tr;
  });
  document.querySelector("#checkpoints tbody").replaceChildren(...rows);
  const by = (status) => job.checkpoints.filter((c) => c.status === status);
  const failed = by("failed");
  let summary = `${by("completed").length} completed, ${failed.length} failed, ` +
    `${by("in_progress").length} in progress`;
  if (failed.length) {
    const last = failed[failed.length - 1];
    summary += ` · last failure: ${last.kind} ${last.id}: ${last.failure_reason || ""}`;
  }
  setText("checkpoint-summary", summary);
}

function renderFailovers(job) {
  const rows = job.failovers.slice().reverse().map((f) => row([
    cell(time(f.at_millis)),
    cell(f.attempt + 1),
    cell(f.task || "", "task"),
    cell(f.root_cause, "root-cause"),
  ]));
  document.querySelector("#failovers tbody").replaceChildren(...rows);
}

function renderConfig(job) {
  const rows = job.config.map((c) => row([cell(c.key, "key"), cell(c.value, "value")]));
  document.querySelector("#config tbody").replaceChildren(...rows);
}

function render(job) {
  document.title = `${job.job.name} · Weir`;
  setText("job-name", job.job.name);
  setText("job-state", job.job.state);
  document.getElementById("job-state").className = `state state-${job.job.state}`;
  setText("job-attempt", String(job.job.attempt + 1));
  setText("job-uptime", duration(job.job.taken_at_millis - job.job.started_at_millis));
  setText("job-restored", job.restored_from
    ? `${job.restored_from.checkpoint_id} (${job.restored_from.source})`
    : "nothing");
  setText("job-updated", time(job.job.taken_at_millis));
  renderGraph(job);
  renderSubtasks(job);
  renderCheckpoints(job);
  renderFailovers(job);
  renderConfig(job);
}

let updates = 0;

async function poll() {
  const banner = document.getElementById("connection");
  try {
    const response = await fetch("/api/v1/job", { cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    render(await response.json());
    updates += 1;
    document.body.dataset.updates = String(updates);
    banner.hidden = true;
  } catch (e) {
    banner.textContent = `Cannot reach the job (${e.message}); retrying. It may have ended.`;
    banner.hidden = false;
  }
  setTimeout(poll, POLL_MS);
}

poll();
