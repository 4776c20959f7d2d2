// Quotes. Behaviour is declared with data-* attributes, as in app.js.
(function () {
  "use strict";
  // The editor: <button data-add-quote-line="#template-id"> copies the empty
  // line kept in that <template> (the formset's empty_form) into the table
  // ([data-quote-lines]) and counts it in the formset's TOTAL_FORMS.
  // Without JavaScript the editor still works: saving adds one more empty line.
  function addLine(button) {
    var template = document.querySelector(button.getAttribute("data-add-quote-line"));
    var form = button.closest("form");
    var total = form.querySelector('input[name$="-TOTAL_FORMS"]');
    var maximum = form.querySelector('input[name$="-MAX_NUM_FORMS"]');
    var body = form.querySelector("[data-quote-lines]");
    var index = parseInt(total.value, 10);
    if (maximum && index >= parseInt(maximum.value, 10)) return;
    body.insertAdjacentHTML("beforeend", template.innerHTML
      .replace(/__prefix__/g, String(index))
      .replace(/__number__/g, String(index + 1)));
    total.value = String(index + 1);
    var rows = body.querySelectorAll("[data-quote-line]");
    var first = rows[rows.length - 1].querySelector("input");
    if (first) first.focus();
  }
  document.addEventListener("click", function (event) {
    if (!event.target.closest) return;
    var add = event.target.closest("[data-add-quote-line]");
    if (add) addLine(add);
    // The customer's page: <button data-print> prints the document.
    if (event.target.closest("[data-print]")) window.print();
  });
  // Buttons that need JavaScript stay hidden without it.
  function reveal() {
    document.querySelectorAll("[data-add-quote-line], [data-print]").forEach(function (button) {
      button.hidden = false;
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", reveal);
  } else {
    reveal();
  }
})();
