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

// Buttons that destroy ask first.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-confirm]");
  if (button && !window.confirm(button.dataset.confirm)) event.preventDefault();
});

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

// Kanban: drag a card to another column to move its stage. Pointer events, so it works with
// a mouse, a pen and a finger alike.
const board = document.querySelector("#board[data-draggable]");
if (board) {
  const form = document.getElementById("move-form");
  let drag = null;
  board.addEventListener("pointerdown", (e) => {
    const card = e.target.closest(".kanban-card");
    if (!card || e.button !== 0) return;
    drag = { card, x: e.clientX, y: e.clientY, moving: false, target: null };
    card.setPointerCapture(e.pointerId);
  });
  board.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const { card } = drag;
    if (!drag.moving) {
      if (Math.hypot(e.clientX - drag.x, e.clientY - drag.y) < 6) return;
      const rect = card.getBoundingClientRect();
      drag.dx = drag.x - rect.left;
      drag.dy = drag.y - rect.top;
      card.style.width = `${rect.width}px`;
      card.classList.add("dragging");
      drag.moving = true;
    }
    card.style.left = `${e.clientX - drag.dx}px`;
    card.style.top = `${e.clientY - drag.dy}px`;
    const column = document.elementFromPoint(e.clientX, e.clientY)?.closest(".board-column");
    if (drag.target !== column) {
      drag.target?.classList.remove("drop-target");
      column?.classList.add("drop-target");
      drag.target = column;
    }
  });
  const finish = (e, cancelled) => {
    if (!drag) return;
    const { card, moving, target } = drag;
    drag = null;
    target?.classList.remove("drop-target");
    if (!moving) return;
    card.classList.remove("dragging");
    card.style.cssText = "";
    // A drag is not a click on the card's link.
    card.addEventListener("click", (c) => c.preventDefault(), { capture: true, once: true });
    const from = card.closest(".board-column");
    if (cancelled || !target || target === from) return;
    target.querySelector(".cards").prepend(card);
    form.action = `/e/${board.dataset.entity}/${card.dataset.id}/edit`;
    form.elements.version.value = card.dataset.version;
    form.elements[board.dataset.stageField].value = target.dataset.stage;
    form.submit();
  };
  board.addEventListener("pointerup", (e) => finish(e, false));
  board.addEventListener("pointercancel", (e) => finish(e, true));
}
