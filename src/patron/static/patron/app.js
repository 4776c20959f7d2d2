// Patron's own small script. Behaviour is declared with data-* attributes.
(function () {
  "use strict";
  // <button data-copy="#element-id">: copy that element's text to the clipboard.
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var source = document.querySelector(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = button.getAttribute("data-copied-label") || "Copied";
    });
  });
  // <form data-confirm="Are you sure?">: ask before submitting.
  // A submit button may carry its own data-confirm (e.g. "Delete ticked").
  document.addEventListener("submit", function (event) {
    var submitter = event.submitter;
    var message = (submitter && submitter.getAttribute("data-confirm")) ||
      event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });
  // <input type="checkbox" data-check-all="form-id">: tick or untick every
  // checkbox that belongs to that form.
  document.addEventListener("change", function (event) {
    var formId = event.target.getAttribute && event.target.getAttribute("data-check-all");
    if (!formId) return;
    document.querySelectorAll('input[type="checkbox"][form="' + formId + '"]').forEach(function (box) {
      box.checked = event.target.checked;
    });
  });
  // The segment builder: when the live count comes back, mark the condition it
  // names as invalid (data-invalid-condition) and clear marks it no longer names.
  // (A whole builder swap carries the same marks, so syncing after any swap is safe.)
  document.addEventListener("htmx:afterSwap", function () {
    var count = document.getElementById("segment-count");
    if (!count) return;
    var invalid = count.getAttribute("data-invalid-condition");
    document.querySelectorAll(".segment-condition").forEach(function (condition) {
      var wrong = condition.id === invalid;
      condition.classList.toggle("border-danger", wrong);
      if (wrong) condition.setAttribute("aria-invalid", "true");
      else condition.removeAttribute("aria-invalid");
    });
    var alert = document.getElementById("segment-error");
    if (alert && !invalid) alert.remove();
  });
  // The deal board: drag a card ([data-move-url]) onto a column ([data-stage-id]).
  // The "Move to" menu on each card does the same without a mouse.
  var dragged = null;
  document.addEventListener("dragstart", function (event) {
    var card = event.target.closest && event.target.closest("[data-move-url]");
    if (!card) return;
    dragged = card;
    card.classList.add("dragging");
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", card.getAttribute("data-deal"));
  });
  document.addEventListener("dragend", function () {
    if (dragged) dragged.classList.remove("dragging");
    document.querySelectorAll(".drop-target").forEach(function (el) { el.classList.remove("drop-target"); });
    dragged = null;
  });
  document.addEventListener("dragover", function (event) {
    var column = dragged && event.target.closest && event.target.closest("[data-stage-id]");
    if (!column) return;
    event.preventDefault();
    column.classList.add("drop-target");
  });
  document.addEventListener("dragleave", function (event) {
    var column = event.target.closest && event.target.closest("[data-stage-id]");
    if (column && !column.contains(event.relatedTarget)) column.classList.remove("drop-target");
  });
  document.addEventListener("drop", function (event) {
    var column = dragged && event.target.closest && event.target.closest("[data-stage-id]");
    if (!column) return;
    event.preventDefault();
    window.htmx.ajax("POST", dragged.getAttribute("data-move-url"), {
      source: dragged,
      target: "#board",
      swap: "outerHTML",
      values: { stage: column.getAttribute("data-stage-id") }
    });
  });
  // <select data-reveals="key">: elements with data-revealed-by="key" show only while
  // the select's value is one of their data-revealed-when values (space-separated).
  function reveal(select) {
    var key = select.getAttribute("data-reveals");
    document.querySelectorAll('[data-revealed-by="' + key + '"]').forEach(function (el) {
      var values = el.getAttribute("data-revealed-when").split(" ");
      el.hidden = values.indexOf(select.value) === -1;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-reveals]")) reveal(event.target);
  });
  document.querySelectorAll("select[data-reveals]").forEach(reveal);
})();
