// The import page: the chosen file goes to the import API for a preview (nothing written) each
// time the mapping or the options change, then once more to start the import; the progress
// bar follows the task until its summary. Every word shown comes from the page's texts.

const form = document.getElementById("import-form");
const texts = JSON.parse(document.getElementById("import-texts").textContent);
const entity = form.dataset.entity;
const locale = form.dataset.locale === "en" ? "en" : "zh-CN";
const $ = (id) => document.getElementById(id);
const fileInput = $("import-file");

// A text with `{name}` filled in.
const say = (key, values = {}) =>
  (texts[key] ?? key).replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));

// An API problem in the page's language: the text of its code, else its own words.
const problemText = (problem) => texts[`error.${problem?.code}`] ?? problem?.detail ?? say("error.failed");

const element = (tag, text, className) => {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
};

let preview = null;
let mapping = null;

function showError(message) {
  $("import-error").textContent = message;
  $("import-error").hidden = !message;
}

function formData(previewOnly) {
  const data = new FormData();
  data.append("file", fileInput.files[0]);
  if (mapping) data.append("mapping", JSON.stringify(mapping));
  const mode = form.elements.mode.value;
  data.append("mode", mode);
  if ((mode === "update" || mode === "skip") && $("import-key").value) data.append("key", $("import-key").value);
  data.append("unmatched", $("import-unmatched").value);
  data.append("all_or_nothing", String($("import-all-or-nothing").checked));
  data.append("preview", String(previewOnly));
  return data;
}

async function send(previewOnly) {
  const reply = await fetch(`/api/v1/records/${entity}/import`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": form.dataset.csrf, Accept: "application/json" },
    body: formData(previewOnly),
  });
  const body = await reply.json().catch(() => null);
  if (!reply.ok) {
    // A refused mapping comes as a field error: its code, like the problem's, has the page's words.
    const first = body?.errors?.[0];
    throw new Error(problemText(first ?? body));
  }
  return body;
}

function fieldLabel(name) {
  const field = preview.fields.find((f) => f.name === name);
  return field ? field.label[locale] : name;
}

function renderMapping() {
  const body = $("import-columns");
  body.replaceChildren();
  preview.columns.forEach((column, i) => {
    const row = element("tr");
    row.append(element("td", column.header));
    const select = element("select");
    select.dataset.column = String(i);
    select.setAttribute("aria-label", column.header);
    select.append(new Option(say("import.skip_column"), ""));
    for (const field of preview.fields) {
      const label = field.label[locale] + (field.required ? ` (${say("import.required")})` : "");
      select.append(new Option(label, field.name, false, field.name === column.field));
    }
    select.addEventListener("change", () => {
      mapping = Object.fromEntries(
        preview.columns.map((c, j) => [c.header, body.querySelector(`[data-column="${j}"]`).value || null]),
      );
      refresh();
    });
    const cell = element("td");
    cell.append(select);
    row.append(cell);
    body.append(row);
  });
}

function renderKeys() {
  const keys = preview.fields.filter((f) => f.key && preview.columns.some((c) => c.field === f.name));
  const select = $("import-key");
  const chosen = preview.key ?? select.value;
  select.replaceChildren(...keys.map((f) => new Option(f.label[locale], f.name, false, f.name === chosen)));
  const mode = form.elements.mode.value;
  $("import-key-box").hidden = mode !== "update" && mode !== "skip";
  $("import-unmatched-box").hidden = mode !== "update";
  $("import-no-key").hidden = keys.length > 0;
}

function renderRows() {
  const table = $("import-rows");
  table.replaceChildren();
  const head = element("tr");
  head.append(element("th", say("import.row")), element("th", say("import.result")));
  for (const column of preview.columns) head.append(element("th", column.header));
  table.append(element("thead"));
  table.tHead.append(head);
  const body = element("tbody");
  for (const row of preview.rows) {
    const line = element("tr", undefined, row.outcome === "fail" ? "failed" : "");
    line.append(element("td", String(row.row)));
    const result = element("td");
    result.append(element("span", say(`import.outcome.${row.outcome}`), `chip outcome-${row.outcome}`));
    for (const reason of row.reasons) result.append(element("div", reason[locale], "form-error"));
    line.append(result);
    for (const cell of row.cells) line.append(element("td", cell));
    body.append(line);
  }
  table.append(body);
}

function render() {
  $("import-empty").hidden = true;
  for (const id of ["import-options", "import-mapping", "import-preview", "import-actions"]) $(id).hidden = false;
  $("import-total").textContent =
    preview.total_rows > 0 ? say("import.total_rows", { n: preview.total_rows }) : say("import.no_rows");
  $("import-notes").replaceChildren(...preview.notes.map((n) => element("li", n[locale])));
  $("import-start").disabled = preview.total_rows === 0;
  renderMapping();
  renderKeys();
  renderRows();
}

async function refresh() {
  if (!fileInput.files[0]) return;
  showError("");
  if (!preview) $("import-empty").textContent = say("import.checking");
  try {
    preview = await send(true);
    render();
  } catch (error) {
    showError(error.message);
  }
}

fileInput.addEventListener("change", () => {
  mapping = null;
  refresh();
});
for (const input of form.querySelectorAll('input[name="mode"], #import-key, #import-unmatched, #import-all-or-nothing')) {
  input.addEventListener("change", () => (preview ? refresh() : undefined));
}

// The task's progress, every few tenths of a second, until it ends.
async function follow(id) {
  const bar = $("import-bar");
  for (;;) {
    const reply = await fetch(`/api/v1/tasks/${id}`, { credentials: "same-origin" });
    const task = await reply.json();
    if (task.total) {
      bar.max = task.total;
      bar.value = task.done;
      $("import-status").textContent = say("import.running", { done: task.done, total: task.total });
    }
    if (task.state === "done") return summarise(id, task.result);
    if (task.state === "failed") {
      $("import-status").textContent = say("import.task_failed", { why: task.error ?? "" });
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

function summarise(id, result) {
  const bar = $("import-bar");
  bar.max = 1;
  bar.value = 1;
  $("import-status").textContent = "";
  $("import-summary").hidden = false;
  $("import-counts").textContent = result.written
    ? say("import.summary", result)
    : say("import.not_written", result);
  if (result.failed > 0) {
    const report = $("import-report");
    report.href = `/api/v1/tasks/${id}/report.csv?locale=${locale}`;
    report.hidden = false;
    const list = $("import-failures");
    list.before(element("h3", say("import.failures")));
    for (const failure of result.failures.slice(0, 50)) {
      list.append(element("li", `${say("import.row")} ${failure.row}: ${failure.reasons.map((r) => r[locale]).join("; ")}`));
    }
  }
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  $("import-start").disabled = true;
  try {
    const started = await send(false);
    form.hidden = true;
    $("import-progress").hidden = false;
    await follow(started.task);
  } catch (error) {
    $("import-start").disabled = false;
    showError(error.message);
  }
});
