// The shell's one script: small enhancements over pages that work without it. Changes go
// through the pages' own forms, which carry the CSRF token.

// Phones: the module menu opens from the top bar.
const navToggle = document.querySelector(".nav-toggle");
navToggle?.addEventListener("click", () => {
  const open = document.getElementById("nav").classList.toggle("open");
  navToggle.setAttribute("aria-expanded", String(open));
});

// Filters are open on wide screens; on a phone they wait behind their summary.
if (window.matchMedia("(min-width: 721px)").matches) {
  for (const box of document.querySelectorAll("details[data-open-on-wide]")) box.open = true;
}

// A file chosen in a form is read into its text box, which is what the form sends.
for (const input of document.querySelectorAll("input[type=file][data-load-into]")) {
  input.addEventListener("change", async () => {
    const file = input.files?.[0];
    if (file) input.form.elements[input.dataset.loadInto].value = await file.text();
  });
}

// A form whose work takes a while says so on its button, and is not sent twice.
for (const form of document.querySelectorAll("form[data-busy]")) {
  form.addEventListener("submit", () => {
    for (const button of form.querySelectorAll("button[type=submit]")) {
      button.disabled = true;
      button.textContent = form.dataset.busy;
    }
  });
}

// Buttons that destroy ask first.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

// The bulk bar's value follows the chosen field: a field with options offers them.
for (const picker of document.querySelectorAll("[data-bulk-field]")) {
  const form = picker.form;
  const show = () => {
    const choices = [...form.querySelectorAll("[data-bulk-value]")];
    for (const s of choices) s.hidden = s.disabled = s.dataset.bulkValue !== picker.value;
    const typed = form.querySelector('input[name="value"]');
    typed.hidden = typed.disabled = choices.some((s) => s.dataset.bulkValue === picker.value);
  };
  picker.addEventListener("change", show);
  show();
}

// Row selection: select all, and the count of selected rows.
for (const form of document.querySelectorAll("form#bulk, form#bin")) {
  const boxes = () => [...form.querySelectorAll('input[name="ids"]')];
  const all = form.querySelector("[data-select-all]");
  const counter = form.querySelector("[data-selected-count]");
  const template = counter?.textContent ?? "";
  const update = () => {
    const n = boxes().filter((b) => b.checked).length;
    if (counter) counter.textContent = template.replace(/\d+/, String(n));
    if (all) all.checked = n > 0 && n === boxes().length;
    // The actions show once there is something to act on.
    form.classList.toggle("none-selected", n === 0);
  };
  update();
  all?.addEventListener("change", () => { for (const b of boxes()) b.checked = all.checked; update(); });
  form.addEventListener("change", (e) => { if (e.target.name === "ids") update(); });
}

// Lookups: type a few letters, pick a record; the hidden input keeps its id.
for (const box of document.querySelectorAll("[data-lookup]")) {
  const text = box.querySelector("[data-lookup-text]");
  const id = box.querySelector("[data-lookup-id]");
  const list = box.querySelector(".lookup-results");
  const titleField = box.dataset.titleField || "name";
  let timer;
  let active = -1;
  // Only the answer to the latest search is shown, whatever order answers arrive in.
  let asked = 0;
  const close = () => { list.hidden = true; list.replaceChildren(); active = -1; };
  const choose = (item) => { id.value = item.dataset.id; text.value = item.textContent; close(); };
  text.addEventListener("input", () => {
    // Typing means choosing again: the old record no longer matches the text.
    id.value = "";
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const term = text.value.trim();
      const ask = ++asked;
      if (!term) return close();
      const filter = JSON.stringify({ field: titleField, op: "contains", value: term });
      const url = `/api/v1/records/${box.dataset.lookup}?limit=10&fields=${titleField}&filter=${encodeURIComponent(filter)}`;
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (ask !== asked) return;
      if (!response.ok) return close();
      const { data } = await response.json();
      if (ask !== asked) return;
      list.replaceChildren(...data.map((record) => {
        const li = document.createElement("li");
        li.setAttribute("role", "option");
        li.dataset.id = record.id;
        li.textContent = record[titleField] ?? record.id;
        li.addEventListener("mousedown", (e) => { e.preventDefault(); choose(li); });
        return li;
      }));
      list.hidden = data.length === 0;
      active = -1;
    }, 200);
  });
  text.addEventListener("keydown", (e) => {
    const items = [...list.children];
    if (list.hidden || items.length === 0) return;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      active = (active + (e.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items.forEach((li, i) => li.setAttribute("aria-selected", String(i === active)));
    } else if (e.key === "Enter" && active >= 0) {
      e.preventDefault();
      choose(items[active]);
    } else if (e.key === "Escape") {
      close();
    }
  });
  text.addEventListener("blur", () => setTimeout(close, 150));
}

// Dragging with pointer events, so a mouse, a pen and a finger all work: `item` elements are
// moved over `zone` elements; `drop(item, zone, before)` says what a drop does.
function draggable(root, { item, zone, drop }) {
  let drag = null;
  root.addEventListener("pointerdown", (e) => {
    const el = e.target.closest(item);
    if (!el || e.button !== 0 || e.target.closest("input, select, textarea, button")) return;
    drag = { el, x: e.clientX, y: e.clientY, moving: false, target: null, before: null };
    el.setPointerCapture(e.pointerId);
  });
  root.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const { el } = drag;
    if (!drag.moving) {
      if (Math.hypot(e.clientX - drag.x, e.clientY - drag.y) < 6) return;
      const rect = el.getBoundingClientRect();
      drag.dx = drag.x - rect.left;
      drag.dy = drag.y - rect.top;
      el.style.width = `${rect.width}px`;
      el.classList.add("dragging");
      drag.moving = true;
    }
    el.style.left = `${e.clientX - drag.dx}px`;
    el.style.top = `${e.clientY - drag.dy}px`;
    const under = document.elementFromPoint(e.clientX, e.clientY);
    const target = under?.closest(zone) ?? null;
    drag.before = under?.closest(item) ?? null;
    if (drag.target !== target) {
      drag.target?.classList.remove("drop-target");
      target?.classList.add("drop-target");
      drag.target = target;
    }
  });
  const finish = (cancelled) => {
    if (!drag) return;
    const { el, moving, target, before } = drag;
    drag = null;
    target?.classList.remove("drop-target");
    if (!moving) return;
    el.classList.remove("dragging");
    el.style.cssText = "";
    // A drag is not a click on a link inside the item.
    el.addEventListener("click", (c) => c.preventDefault(), { capture: true, once: true });
    if (!cancelled && target) drop(el, target, before);
  };
  root.addEventListener("pointerup", () => finish(false));
  root.addEventListener("pointercancel", () => finish(true));
}

// Kanban: drop a card on another column to move its stage, through the same save as the
// stage path.
const board = document.querySelector("#board[data-draggable]");
if (board) {
  const form = document.getElementById("move-form");
  draggable(board, {
    item: ".kanban-card",
    zone: ".board-column",
    drop(card, column) {
      if (column === card.closest(".board-column")) return;
      column.querySelector(".cards").prepend(card);
      form.action = `/e/${board.dataset.entity}/${card.dataset.id}/edit`;
      form.elements.version.value = card.dataset.version;
      form.elements[board.dataset.stageField].value = column.dataset.stage;
      form.submit();
    },
  });
}

// Calendar: drop an activity on another day to reschedule it, at the same time of day; in a
// week or a day, on another hour too, at the same minutes.
const calendar = document.querySelector("#calendar[data-draggable]");
if (calendar) {
  const form = document.getElementById("reschedule-form");
  draggable(calendar, {
    item: ".event",
    zone: "td.day",
    drop(event, day) {
      if (day === event.closest("td.day")) return;
      day.querySelector(".events").append(event);
      const [hour, minutes] = event.dataset.time.split(":");
      form.action = `/e/activity/${event.dataset.id}/edit`;
      form.elements.version.value = event.dataset.version;
      form.elements.due_at.value = `${day.dataset.date}T${day.dataset.hour ?? hour}:${minutes}`;
      form.submit();
    },
  });
}

// List settings: columns are dragged into order, or out to the palette; the form sends them.
const columns = document.getElementById("columns-designer");
if (columns) {
  const input = document.getElementById("list-form").elements.columns;
  draggable(columns, {
    item: ".chip-field",
    zone: ".chips",
    drop(chip, list, before) {
      list.insertBefore(chip, before && before !== chip && list.contains(before) ? before : null);
      const shown = columns.querySelectorAll("[data-columns-list] .chip-field");
      input.value = [...shown].map((c) => c.dataset.field).join(", ");
    },
  });
}

// Layout designer: fields are dragged between sections and the palette; the layout is kept
// as JSON in the form, which is what is saved.
const designer = document.getElementById("designer");
if (designer) {
  const form = document.getElementById("layout-form");
  const serialize = () => {
    const sections = [...designer.querySelectorAll(".designer-section")].map((section) => ({
      name: section.dataset.section,
      label: { "zh-CN": section.querySelector("[data-label-zh]").value, en: section.querySelector("[data-label-en]").value },
      columns: Number(section.querySelector("[data-columns]").value),
      fields: [...section.querySelectorAll(".chip-field")].map((chip) => {
        const readonly = chip.querySelector('[data-flag="readonly"]')?.checked ?? false;
        const required = chip.querySelector('[data-flag="required"]')?.checked ?? false;
        return readonly || required ? { field: chip.dataset.field, readonly, required } : chip.dataset.field;
      }),
    }));
    form.elements.layout.value = JSON.stringify({ sections }, null, 2);
  };
  draggable(designer, {
    item: ".chip-field",
    zone: ".chips",
    drop(chip, list, before) {
      list.insertBefore(chip, before && before !== chip && list.contains(before) ? before : null);
      serialize();
    },
  });
  designer.addEventListener("input", serialize);
  document.getElementById("add-section")?.addEventListener("click", () => {
    const template = document.getElementById("section-template");
    const section = template.content.firstElementChild.cloneNode(true);
    section.dataset.section = `section_${Date.now().toString(36)}`;
    designer.querySelector(".designer-sections").append(section);
    serialize();
  });
  form.addEventListener("submit", serialize);
}

// The top bar's search box: what it finds as one types, grouped by module. Enter (or no
// script) opens the full results page.
const searchBox = document.getElementById("global-search");
const suggest = document.getElementById("search-suggest");
if (searchBox && suggest) {
  let timer;
  let asked = 0;
  const close = () => { suggest.hidden = true; suggest.replaceChildren(); };
  const link = (href, text, className) => {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    if (className) a.className = className;
    return a;
  };
  searchBox.addEventListener("input", () => {
    clearTimeout(timer);
    const q = searchBox.value.trim();
    if (!q) return close();
    timer = setTimeout(async () => {
      const mine = ++asked;
      const reply = await fetch(`/api/v1/search?limit=8&q=${encodeURIComponent(q)}`, { credentials: "same-origin" });
      if (mine !== asked || !reply.ok) return;
      const found = await reply.json();
      const lang = document.documentElement.lang === "en" ? "en" : "zh-CN";
      const parts = [];
      for (const group of found.groups) {
        const heading = document.createElement("p");
        heading.className = "suggest-group";
        heading.textContent = group.label[lang];
        parts.push(heading);
        for (const hit of group.hits) parts.push(link(`/e/${group.entity}/${hit.id}`, hit.title, "suggest-hit"));
      }
      if (!parts.length) {
        const none = document.createElement("p");
        none.className = "muted";
        none.textContent = searchBox.dataset.none;
        parts.push(none);
      }
      parts.push(link(`/search?q=${encodeURIComponent(q)}`, searchBox.dataset.all, "suggest-all"));
      suggest.replaceChildren(...parts);
      suggest.hidden = false;
    }, 150);
  });
  searchBox.addEventListener("keydown", (event) => { if (event.key === "Escape") close(); });
  document.addEventListener("click", (event) => { if (!event.target.closest(".global-search")) close(); });
}

// Likely duplicates: as the fields a duplicate rule compares are filled in, the form asks
// which records these values may already be, and says so before the save — with the owner
// of a record the user may not open.
const duplicates = document.getElementById("duplicates");
if (duplicates) {
  const form = duplicates.closest("form");
  const fields = duplicates.dataset.fields.split(",");
  const list = duplicates.querySelector("ul");
  const blocked = duplicates.querySelector(".duplicates-blocked");
  const fill = (template, values) => template.replace(/\{(\w+)\}/g, (_, key) => values[key] ?? "");
  let timer;
  let asked = 0;
  const check = async () => {
    const values = {};
    for (const name of fields) {
      const value = form.elements[name]?.value?.trim();
      if (value) values[name] = value;
    }
    const mine = ++asked;
    if (!Object.keys(values).length) { duplicates.hidden = true; return; }
    const reply = await fetch(`/api/v1/records/${duplicates.dataset.entity}/duplicates`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": form.elements._csrf.value },
      body: JSON.stringify({ values, id: duplicates.dataset.record || null }),
    });
    if (mine !== asked || !reply.ok) return;
    const found = await reply.json();
    list.replaceChildren(...found.matches.map((match) => {
      const item = document.createElement("li");
      const facts = { score: match.score, owner: match.owner ?? "—", department: match.department };
      if (match.visible) {
        const a = document.createElement("a");
        a.href = `/e/${duplicates.dataset.entity}/${match.id}`;
        a.textContent = match.title ?? match.id;
        item.append(a, " · ", fill(duplicates.dataset.visible, facts));
      } else {
        item.textContent = fill(match.department ? duplicates.dataset.hidden : duplicates.dataset.hiddenNodept, facts);
      }
      return item;
    }));
    blocked.textContent = duplicates.dataset.blocked;
    blocked.hidden = !found.blocked;
    duplicates.hidden = found.matches.length === 0;
  };
  for (const name of fields) {
    form.elements[name]?.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, 300); });
  }
  if (fields.some((name) => form.elements[name]?.value)) check();
}

// A background task's progress bar: filled as the task reports, and the page shown again
// when it ends.
for (const box of document.querySelectorAll("[data-task]")) {
  const bar = box.querySelector("progress");
  const follow = async () => {
    const reply = await fetch(`/api/v1/tasks/${box.dataset.task}`, { credentials: "same-origin" });
    if (!reply.ok) return;
    const task = await reply.json();
    if (task.state !== "running") return window.location.reload();
    if (task.total) { bar.max = task.total; bar.value = task.done; }
    setTimeout(follow, 500);
  };
  setTimeout(follow, 300);
}

// 查找知识 on a service request: the knowledge base searched as one types; "attach" links an
// article through the records API (with the session's CSRF token) and the articles panel is
// drawn again from the page. An article already attached is not offered again.
const finder = document.getElementById("kb-find");
if (finder) {
  const input = finder.querySelector("input[type=search]");
  const hits = finder.querySelector(".kb-find-hits");
  const status = finder.querySelector("[role=status]");
  const attached = new Set(finder.dataset.attached.split(",").filter(Boolean));
  const csrf = document.querySelector('input[name="_csrf"]')?.value ?? "";
  let timer;
  let asked = 0;
  // The fragment's marks are UTF-8 byte ranges: cut the bytes, then decode each piece.
  const marked = (fragment, ranges) => {
    const bytes = new TextEncoder().encode(fragment);
    const decode = (from, to) => new TextDecoder().decode(bytes.slice(from, to));
    const parts = [];
    let at = 0;
    for (const [start, end] of ranges) {
      if (start < at || end > bytes.length) continue;
      parts.push(document.createTextNode(decode(at, start)));
      const mark = document.createElement("mark");
      mark.textContent = decode(start, end);
      parts.push(mark);
      at = end;
    }
    parts.push(document.createTextNode(decode(at, bytes.length)));
    return parts;
  };
  const refreshPanel = async () => {
    const reply = await fetch(location.pathname, { credentials: "same-origin" });
    if (!reply.ok) return;
    const page = new DOMParser().parseFromString(await reply.text(), "text/html");
    const fresh = page.getElementById(finder.dataset.panel);
    if (fresh) document.getElementById(finder.dataset.panel)?.replaceWith(fresh);
  };
  const attach = async (article, button) => {
    button.disabled = true;
    status.textContent = "";
    const reply = await fetch("/api/v1/records/service_request_article", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": csrf },
      body: JSON.stringify({ service_request: finder.dataset.request, article }),
    });
    if (reply.ok) {
      attached.add(article);
      const done = document.createElement("span");
      done.className = "muted";
      done.textContent = finder.dataset.attachedText;
      button.replaceWith(done);
      await refreshPanel();
      return;
    }
    const problem = await reply.json().catch(() => ({}));
    const reasons = (problem.errors ?? []).map((e) => e.message).join("; ") || problem.detail || String(reply.status);
    status.textContent = finder.dataset.failed + reasons;
    button.disabled = false;
  };
  const show = (found) => {
    const items = [];
    for (const article of found.data) {
      const hit = { id: article.id, title: article.title, ...article.matched };
      const item = document.createElement("li");
      const text = document.createElement("div");
      const link = document.createElement("a");
      link.href = `/e/knowledge_article/${hit.id}`;
      link.textContent = hit.title;
      const snippet = document.createElement("p");
      snippet.className = "muted";
      snippet.append(...marked(hit.fragment, hit.highlights));
      text.append(link, snippet);
      item.append(text);
      if (attached.has(hit.id)) {
        const done = document.createElement("span");
        done.className = "muted";
        done.textContent = finder.dataset.attachedText;
        item.append(done);
      } else {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.attach = hit.id;
        button.textContent = finder.dataset.attach;
        button.addEventListener("click", () => attach(hit.id, button));
        item.append(button);
      }
      items.push(item);
    }
    hits.replaceChildren(...items);
    status.textContent = items.length ? "" : finder.dataset.none;
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    const q = input.value.trim();
    if (!q) { hits.replaceChildren(); status.textContent = ""; return; }
    timer = setTimeout(async () => {
      const mine = ++asked;
      const reply = await fetch(`/api/v1/kb/articles?q=${encodeURIComponent(q)}`, { credentials: "same-origin" });
      if (mine !== asked || !reply.ok) return;
      show(await reply.json());
    }, 200);
  });
}

// The report builder shows the result as the design changes: the page of the new design is
// fetched and its result, the save form's copy of the design and the export link are put in
// place, so what is typed in the save form stays. A new module changes the choices: the
// whole page loads.
const builder = document.getElementById("report-builder");
if (builder) {
  let latest = 0;
  builder.addEventListener("change", async (event) => {
    if (event.target.matches("[data-reload]")) {
      builder.requestSubmit();
      return;
    }
    const query = new URLSearchParams(new FormData(builder)).toString();
    const asked = ++latest;
    builder.parentElement.classList.add("loading");
    try {
      const response = await fetch(`/reports/build?${query}`, { headers: { Accept: "text/html" } });
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      if (asked !== latest) return;
      for (const id of ["report-preview", "report-design"]) {
        const fresh = page.getElementById(id);
        if (fresh) document.getElementById(id)?.replaceWith(fresh);
      }
      const link = page.getElementById("export-design");
      if (link) document.getElementById("export-design")?.setAttribute("href", link.getAttribute("href"));
      history.replaceState(null, "", `/reports/build?${query}`);
    } finally {
      if (asked === latest) builder.parentElement.classList.remove("loading");
    }
  });
}

// Merge fields on the compose page: a click puts the field's code at the body's cursor.
for (const button of document.querySelectorAll("[data-insert]")) {
  button.addEventListener("click", () => {
    const body = document.querySelector("[data-merge-target]");
    if (!body) return;
    const start = body.selectionStart ?? body.value.length;
    body.setRangeText(button.dataset.insert, start, body.selectionEnd ?? start, "end");
    body.focus();
  });
}
