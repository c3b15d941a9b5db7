// ecglens viewer: upload or pick an example, see the diagnosis, the scored input on ECG paper, and explanations.
// Every text from the server or a file is inserted with textContent (never as markup).
"use strict";

const token = new URLSearchParams(location.search).get("token");
const state = {model: null, result: null, explained: {}, known: null, statements: []};
const LAYOUT = [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"], ["III", "aVF", "V3", "V6"]];
const ROW_MV = 3.0;
const BLUE = "#0072B2", ORANGE = "#E69F00", VERMILION = "#D55E00";
const $ = (id) => document.getElementById(id);

// Plotly reads titles as its own markup (<a>, <b>, <br>): text from a file is escaped before it gets there.
function plotlyText(text) {
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, Object.assign({}, options, {headers}));
  let body = null;
  try { body = await response.json(); } catch (e) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `${response.status} ${response.statusText}`;
    throw new Error(message);
  }
  return body;
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "";
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

async function init() {
  try {
    state.model = await api("/api/model");
    const m = state.model;
    const data = m.training_data ? ` trained on ${m.training_data.datasets.join(", ")} (${m.training_data.n_train} records)` : "";
    const notice = m.notice ? `${m.notice}. ` : "";
    $("model-line").textContent = `${notice}${m.model}, ${m.class_names.length} classes, ${m.sampling_rate_hz} Hz,${data}${m.calibrated ? ", calibrated probabilities" : ""}; ecglens ${m.ecglens_version}`;
    for (const name of m.class_names) $("class-select").appendChild(element("option", name));
    const examples = await api("/api/examples");
    showExamplesLabel(examples, m.examples_note);
    for (const example of examples) {
      const button = element("button", example.class);
      button.type = "button";
      button.title = example.description;
      button.dataset.example = example.id;
      button.addEventListener("click", () => {
        // a real record's mapped labels come with its result; its own statements, all of them, from the example
        state.known = example.real ? null : [example.class];
        state.statements = example.statements;
        diagnose(`/api/examples/${encodeURIComponent(example.id)}`, new FormData(), example.description);
      });
      $("examples").appendChild(button);
    }
  } catch (error) {
    status(`cannot reach the model: ${error.message}`, true);
  }
}

// The examples' label; for real records their credit (the dataset, its citation and licence) beside the buttons;
// with no examples, the server's line saying how to fetch them instead of an empty area.
function showExamplesLabel(examples, note) {
  const real = examples.find((e) => e.real);
  $("examples").hidden = examples.length === 0 && !note;
  $("examples-label").textContent = examples.length === 0 ? (note ? note.charAt(0).toUpperCase() + note.slice(1) : "")
    : real ? "Try a real record (known class):" : "Try a synthetic example (known class):";
  $("examples-credit").hidden = !real;
  if (!real) return;
  const licence = element("a", "CC BY 4.0");
  licence.href = "https://creativecommons.org/licenses/by/4.0/";
  licence.rel = "license noopener";
  $("examples-credit").replaceChildren(`Records: ${real.source}. Licence: `, licence, ".");
}

function upload(fileList) {
  const files = Array.from(fileList);
  if (!files.length) return;
  const form = new FormData();
  for (const file of files) form.append("files", file, file.name);
  if ($("sampling-rate").value) form.append("sampling_rate", $("sampling-rate").value);
  if ($("lead-order").value.trim()) form.append("lead_order", $("lead-order").value.trim());
  state.known = null;
  state.statements = [];
  diagnose("/api/predict", form, files.map((f) => f.name).join(" + "));
}

async function diagnose(path, form, label) {
  status(`diagnosing ${label || "the example"}…`);
  form.append("include_input", "true");  // the page draws the scored input
  try {
    const result = await api(path, {method: "POST", body: form});
    state.result = result;
    state.explained = {};
    render(result);
    status(`done: ${result.record_id}`);
  } catch (error) {
    status(error.message, true);
  }
}

// how a class was decided: the model's probability, the fused decision's, or its criteria alone (a class the model
// cannot know shows no model probability as if it had decided)
function decidedHow(result, name) {
  const by = (result.decided_by || {})[name];
  const fused = (result.fused_probabilities || {})[name];
  if (by === "by criteria") return "by criteria";
  if (by === "fused" && fused !== undefined) return `fused ${fused.toFixed(2)}`;
  return result.probabilities[name].toFixed(2);
}

function render(result) {
  $("result").hidden = false;
  $("record-title").textContent = `${result.record_id} (${result.duration_s.toFixed(1)} s)`;
  const decided = result.status && result.status !== "ok" ? `none: ${result.status} (${result.reasons.join("; ")})`
    : result.decisions.length ? result.decisions.map((d) => `${d} (${decidedHow(result, d)})`).join(", ")
    : `none reaches its threshold; highest ${highest(result, 2)}`;
  $("decisions").textContent = `Decisions: ${decided}`;
  // where the decisions and the guideline criteria disagree: always beside the decisions, never hidden
  $("disagreements").replaceChildren(...(result.disagreements || []).map((d) => element("li", `criteria disagree: ${d}`)));
  const known = result.true_labels || state.known;
  const own = state.statements && state.statements.length ? ` (the record's own statements: ${state.statements.join(", ")})` : "";
  const knownLine = known ? `Known, mapped to this model's classes: ${known.length ? known.join(", ") : "none of them"}${own}` : "";
  const fileOwn = result.file_statements && result.file_statements.length
    ? `The file's own statement (not ecglens's): ${result.file_statements.join(" | ")}` : "";
  const derived = result.derived_leads && result.derived_leads.length ? `Leads ${result.derived_leads.join(", ")} derived from I and II by the reader.` : "";
  $("known").textContent = [knownLine, fileOwn, derived].filter((line) => line).join(" · ");
  $("warnings").replaceChildren(...result.warnings.map((w) => element("li", w)));
  renderMeasurements(result.measurements);
  renderCriteria(result);
  const names = state.model.class_names;
  const top = result.decisions[0] || names.reduce((a, b) => (result.probabilities[a] >= result.probabilities[b] ? a : b));
  $("class-select").value = top;
  renderProbabilities(result);
  drawEcg();
  refreshExplanations();
}

const MEASURED = [["heart_rate_bpm", "HR", "bpm"], ["pr_ms", "PR", "ms"], ["qrs_ms", "QRS", "ms"], ["qt_ms", "QT", "ms"],
  ["qtc_bazett_ms", "QTc (Bazett)", "ms"], ["qtc_fridericia_ms", "QTc (Fridericia)", "ms"],
  ["p_axis_deg", "P axis", "deg"], ["qrs_axis_deg", "QRS axis", "deg"], ["t_axis_deg", "T axis", "deg"]];

function renderMeasurements(m) {
  const target = $("measurements");
  if (!m) {
    target.replaceChildren();
    return;
  }
  const outside = new Set(m.outside_normal);
  const parts = MEASURED.map(([key, name, unit]) => {
    const range = m.normal_ranges[key];
    // to the unit, or to 0.1 where rounding would put a value outside its range onto the range's edge
    const whole = m[key] === null ? null : Math.round(m[key]);
    const edge = range && whole !== null && ((m[key] > range[1] && whole <= range[1]) || (m[key] < range[0] && whole >= range[0]));
    const value = m[key] === null ? "n/a" : `${edge ? m[key].toFixed(1) : whole} ${unit}`;
    // the QRS axis names its category (AHA/ACCF/HRS 2009) when it is not normal
    const category = key === "qrs_axis_deg" && m.qrs_axis_category && m.qrs_axis_category !== "normal" ? ` (${m.qrs_axis_category})` : "";
    const span = element("span", `${name} ${value}${category}`, outside.has(key) ? "outside" : "");
    if (range) span.title = `normal ${range[0]} to ${range[1]} ${unit}` + (key.startsWith("qtc_") ? `; ${m.qtc_limit}` : "");
    return span;
  });
  const label = element("span", "Measured (delineated waves; hover for the normal range): ");
  const notes = m.notes.length ? [element("span", ` (${m.notes.join("; ")})`, "note")] : [];
  target.replaceChildren(label, ...parts.flatMap((p, i) => (i ? [" · ", p] : [p])), ...notes);
}

function renderCriteria(result) {
  const target = $("criteria");
  const c = result.criteria;
  if (!c) {
    target.replaceChildren(...(result.status === "ok" ? [element("span", "Guideline criteria not evaluated: the server measures no waves (serve --measurements).", "note")] : []));
    return;
  }
  const parts = Object.entries(c.classes).map(([name, v]) => {
    const span = element("span", `${name} ${v.status}`, v.status === "met" ? "met" : "");
    span.title = `${v.title}: ${v.line}`;
    return span;
  });
  const label = element("span", "Guideline criteria (hover for the values): ");
  const notes = c.notes.length ? [element("span", ` (${c.notes.join("; ")})`, "note")] : [];
  target.replaceChildren(label, ...parts.flatMap((p, i) => (i ? [" · ", p] : [p])), ...notes);
}

function highest(result, n) {
  const unknown = result.not_validated || {};
  return Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]).slice(0, n)
    .map(([name, p]) => `${name} ${p.toFixed(2)}${name in unknown ? " (not validated)" : ""}`).join(", ");
}

function renderProbabilities(result) {
  const table = $("probabilities");
  const head = element("tr");
  for (const h of ["class", "probability", "", "threshold", "decision"]) head.appendChild(element("th", h));
  const rows = [head];
  for (const name of state.model.class_names) {
    const p = result.probabilities[name], t = result.thresholds[name];
    const decided = result.decisions.includes(name);  // the server's decisions: none for a record it cannot interpret
    const unknown = (result.not_validated || {})[name];  // a class the model cannot know: greyed, never decided
    const row = element("tr", undefined, unknown ? "not-validated" : undefined);
    if (unknown) row.title = unknown;
    row.appendChild(element("td", name));
    row.appendChild(element("td", p.toFixed(3)));
    const bar = element("div", undefined, "bar");
    const fill = element("div", undefined, decided ? "fill decided" : "fill");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    const mark = element("div", undefined, "threshold");
    mark.style.left = `${(100 * t).toFixed(1)}%`;
    mark.title = `threshold ${t.toFixed(3)}`;
    bar.append(fill, mark);
    const cell = element("td");
    cell.appendChild(bar);
    row.appendChild(cell);
    row.appendChild(element("td", t.toFixed(3)));
    // who decided: the model, the fused decision (model and criteria) or the criteria alone (a class the model
    // cannot know)
    const by = (result.decided_by || {})[name];
    const verdict = decided ? (by && by !== "model" ? `yes (${by})` : "yes") : unknown ? "not validated" : "";
    row.appendChild(element("td", verdict, decided ? "decision" : undefined));
    rows.push(row);
  }
  table.replaceChildren(...rows);
  const unknown = Object.keys(state.model.not_validated || {});
  const grey = unknown.length ? ` Grey rows (${unknown.join(", ")}): not validated (too few training or validation positives, or a validation AUC not shown better than chance); never decided by the model (with --measurements the fused decision may decide them by their criteria).` : "";
  $("threshold-origin").textContent = `Thresholds: ${state.model.threshold_origin.description}. Bar: probability; black tick: threshold.${grey}`;
}

function median(values) {
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.floor(sorted.length / 2)];
}

function ecgTraces(result) {
  const input = result.input, fs = input.sampling_rate_hz;
  const n = input.signal[0].length, seconds = n / fs, column = seconds / 4;
  const index = Object.fromEntries(input.lead_names.map((name, i) => [name, i]));
  const panels = LAYOUT.map((row) => row.map((name, c) => [name, c * column, (c + 1) * column]));
  panels.push([["II", 0, seconds]]);
  const traces = [], annotations = [];
  panels.forEach((row, r) => {
    const offset = -r * ROW_MV;
    traces.push({x: [-0.45, -0.4, -0.4, -0.2, -0.2, -0.15], y: [0, 0, 1, 1, 0, 0].map((v) => v + offset - 1),
                 mode: "lines", line: {color: "black", width: 1.4}, hoverinfo: "skip", showlegend: false});
    for (const [name, start, stop] of row) {
      if (!(name in index)) continue;
      const lead = input.signal[index[name]];
      const base = median(lead);
      const a = Math.floor(start * fs), z = Math.min(Math.floor(stop * fs), n);
      const x = [], y = [], amplitude = [];
      for (let i = a; i < z; i++) { x.push(i / fs); y.push(lead[i] - base + offset); amplitude.push(lead[i]); }
      traces.push({x, y, customdata: amplitude, mode: "lines", line: {color: "black", width: 1}, name,
                   hovertemplate: `${name}<br>t = %{x:.3f} s<br>%{customdata:.3f} mV<extra></extra>`, showlegend: false});
      annotations.push({x: start + 0.05, y: offset + ROW_MV / 2 - 0.35, text: `<b>${name}</b>`, showarrow: false,
                        xanchor: "left", font: {size: 13}});
    }
  });
  // The paper grows to fit the highest and lowest excursions: nothing is clipped.
  const ys = traces.flatMap((trace) => trace.y);
  const top = Math.max(ROW_MV / 2, Math.max(...ys) + 0.2);
  const bottom = Math.min(-(panels.length - 1) * ROW_MV - ROW_MV / 2, Math.min(...ys) - 0.2);
  return {traces, annotations, seconds, rows: panels.length, top, bottom};
}

function gradcamTrace(explanation, seconds, top, bottom) {
  const map = explanation.time_map, n = map.length;
  const low = Math.min(...map), high = Math.max(...map);
  const span = high - low;
  if (!(span > 0) || high <= 0) return {trace: null, empty: true};
  const normalised = map.map((v) => (v - low) / span);
  const cut = Float64Array.from(normalised).sort()[Math.floor(0.95 * (n - 1))];
  const shown = normalised.map((v) => (v >= cut ? v : 0));
  const x = Array.from({length: n}, (_, i) => i * seconds / n);
  return {empty: false, trace: {type: "heatmap", x, y: [bottom - 100, top + 100], z: [shown],  // clipped to the sheet
    zmin: 0, zmax: 1, colorscale: [[0, "rgba(230,159,0,0)"], [0.01, "rgba(230,159,0,0.25)"], [1, "rgba(213,94,0,0.6)"]],
    hovertemplate: "Grad-CAM %{z:.2f} at t = %{x:.2f} s<extra></extra>",
    colorbar: {title: {text: "Grad-CAM<br>(per time)", side: "right"}, thickness: 12, len: 0.5}}};
}

function drawEcg() {
  const result = state.result;
  if (!result) return;
  const {traces, annotations, seconds, top, bottom} = ecgTraces(result);
  const className = $("class-select").value;
  const showGradcam = $("gradcam-toggle").checked;
  const explanation = state.explained[`gradcam:${className}`];
  let title = `${plotlyText(result.record_id)}: scored input`;
  let shading = "off";
  if (showGradcam && explanation) {
    const {trace, empty} = gradcamTrace(explanation, seconds, top, bottom);
    shading = empty ? "empty" : "on";
    if (empty) {
      title += ` — no positive Grad-CAM evidence for ${plotlyText(className)} at p = ${explanation.probability.toFixed(2)}`;
    } else {
      traces.unshift(trace);
      title += ` — Grad-CAM for ${plotlyText(className)} (p = ${explanation.probability.toFixed(2)}), top 5 % of time steps, per time not per lead`;
    }
  }
  // Paper scale: 25 mm per second across, 10 mm per mV up; the height follows the width so nothing is stretched.
  const margin = {l: 10, r: 10, t: 40, b: 10};
  const width = $("ecg").clientWidth || 1200;
  const height = margin.t + margin.b + (width - margin.l - margin.r) * ((top - bottom) * 10) / ((seconds + 0.5) * 25);
  const layout = {
    title: {text: title, font: {size: 14}}, height, margin, annotations,
    plot_bgcolor: "white", dragmode: "zoom", hovermode: "closest",
    xaxis: {range: [-0.5, seconds], constrain: "domain", dtick: 0.2, ticks: "", showticklabels: false, gridcolor: "#f2b6b6", gridwidth: 1, zeroline: false,
            minor: {dtick: 0.04, gridcolor: "#fbe3e3", showgrid: true, ticks: ""}},
    yaxis: {range: [bottom, top], dtick: 0.5, ticks: "", showticklabels: false, gridcolor: "#f2b6b6",
            zeroline: false, scaleanchor: "x", scaleratio: 0.4, minor: {dtick: 0.1, gridcolor: "#fbe3e3", showgrid: true, ticks: ""}},
  };
  Plotly.react("ecg", traces, layout, {responsive: true, displaylogo: false});
  $("ecg").dataset.gradcam = shading;
  scrollHint();
}

// A narrow window shows the paper-scale ECG's first column only: say that it scrolls sideways.
function scrollHint() {
  const box = $("ecg-scroll");
  $("ecg-scroll-hint").hidden = box.scrollWidth <= box.clientWidth + 1;
}
window.addEventListener("resize", scrollHint);

async function explanation(method, className) {
  const key = `${method}:${className}`;
  if (!(key in state.explained)) {
    const query = new URLSearchParams({method, class: className});
    const body = await api(`/api/results/${state.result.id}/explanations?${query}`);
    state.explained[key] = body.explanations[0];
  }
  return state.explained[key];
}

const METHOD_NAMES = {gradcam: "Grad-CAM", shap: "SHAP"};

// Where an explanation's positive evidence falls among the scored input's delineated waves (serve --measurements).
function wavesLine(explanation) {
  const w = explanation && explanation.waves;
  if (!w) return null;
  const name = `${METHOD_NAMES[explanation.method] || explanation.method} for ${explanation.class}`;
  if (!w.has_evidence) return `${name}: no positive evidence among the waves`;
  const segments = Object.keys(w.shares).map((s) => `${s} ${Math.round(100 * w.shares[s])}% (${Math.round(100 * w.time_shares[s])}% of time)`);
  const edge = w.edge_plausibility === null || w.edge_plausibility === undefined ? "" : `, ${w.edge_plausibility.toFixed(2)} for the ECG's own slope |dx/dt|, a map that knows no class`;
  const plausible = w.plausibility === null ? "" : `; plausibility ${w.plausibility.toFixed(2)} against ${w.chance.toFixed(2)} by chance${edge} (share in ${w.expected.join(", ")}, where a cardiologist looks)`;
  const estimate = explanation.method === "shap" ? " SHAP's shares are a Monte-Carlo estimate: another draw moves them a little." : "";
  return `${name}, evidence among the waves: ${segments.join(" · ")}${plausible}. Waves: ${w.waves_from}.${estimate}`;
}

function renderWaves(explanations) {
  const lines = explanations.map(wavesLine).filter((line) => line);
  $("waves-note").replaceChildren(...lines.map((line) => element("li", line)));
}

async function refreshExplanations() {
  const className = $("class-select").value;
  try {
    const shown = [];
    if ($("gradcam-toggle").checked) shown.push(await explanation("gradcam", className));
    drawEcg();
    renderWaves(shown);
    if (state.model.explanations.includes("shap")) {
      $("shap-note").textContent = `computing SHAP for ${className}…`;
      const shap = await explanation("shap", className);
      drawShap(shap);
      renderWaves([...shown, shap]);
    } else {
      $("shap-note").textContent = "SHAP needs a background of training records: start the server with --background CACHE.";
    }
  } catch (error) {
    status(error.message, true);
  }
}

function drawShap(explanation) {
  const leads = Object.keys(explanation.lead_values), values = leads.map((l) => explanation.lead_values[l]);
  $("shap-title").textContent = `SHAP per lead for ${explanation.class} (p = ${explanation.probability.toFixed(2)})`;
  Plotly.react("shap-bars", [{type: "bar", x: leads, y: values, marker: {color: values.map((v) => (v >= 0 ? ORANGE : BLUE))},
    hovertemplate: "%{x}: %{y:.4f}<extra></extra>"}],
    {height: 300, margin: {l: 60, r: 10, t: 10, b: 40}, yaxis: {title: {text: "sum of SHAP over time"}, zeroline: true}},
    {displaylogo: false, responsive: true});
  const check = explanation.additivity;
  const sum = check.standard_error === null ? check.lead_sum.toFixed(3)
    : `${check.lead_sum.toFixed(3)} (standard error ${check.standard_error.toFixed(3)})`;
  $("shap-note").textContent = `Expected-gradients SHAP of the class ${check.units}, summed over each lead's samples: `
    + `orange pushes towards the class, blue away. The leads sum to ${sum} (Monte-Carlo, ${check.n_samples} samples); `
    + `in expectation they add up to p − the background's mean = ${check.probability.toFixed(3)} − `
    + `${check.background_mean.toFixed(3)} = ${check.expected.toFixed(3)}.`
    + (check.converged ? "" : " Not converged: the sum is more than 20 % off its expectation; read these values as noise.");
}

function download(name, text) {
  const link = element("a");
  link.href = URL.createObjectURL(new Blob([text], {type: "application/json"}));
  link.download = name;
  link.click();
  URL.revokeObjectURL(link.href);
}

document.addEventListener("DOMContentLoaded", () => {
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => { event.preventDefault(); drop.classList.remove("over"); upload(event.dataTransfer.files); });
  $("file-input").addEventListener("change", (event) => upload(event.target.files));
  $("class-select").addEventListener("change", refreshExplanations);
  $("gradcam-toggle").addEventListener("change", refreshExplanations);
  $("download-json").addEventListener("click", () => state.result && download(`${state.result.record_id}.json`, JSON.stringify(state.result, null, 1)));
  $("download-png").addEventListener("click", () => Plotly.downloadImage("ecg", {format: "png", filename: state.result.record_id, width: 1600, height: 900}));
  $("download-svg").addEventListener("click", () => Plotly.downloadImage("ecg", {format: "svg", filename: state.result.record_id, width: 1600, height: 900}));
  // The one-page report of the shown result, with Grad-CAM for the chosen class when its shading is on.
  $("download-pdf").addEventListener("click", () => {
    if (!state.result) return;
    const query = $("gradcam-toggle").checked ? `?${new URLSearchParams({method: "gradcam", class: $("class-select").value})}` : "";
    const link = element("a");
    link.href = `/api/results/${state.result.id}/report.pdf${query}`;
    link.click();
  });
  let resizing = null;
  window.addEventListener("resize", () => { clearTimeout(resizing); resizing = setTimeout(drawEcg, 200); });
  init();
});
