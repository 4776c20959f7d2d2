// Patron forms snippet: draws a form into <div data-patron-form="KEY" data-patron-base="URL">
// from its JSON description and sends it with fetch, showing errors next to the fields.
// No dependencies; the page's own styles apply (class names start with "patron-form").
// window.patronForms.mount(holder) draws a holder added later (the tracker's pop-ups do);
// a holder sends a "patron:sent" event (it bubbles) once its form was accepted.
(function () {
  "use strict";

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (attrs[name] === true) node.setAttribute(name, "");
      else if (attrs[name] !== false && attrs[name] != null) node.setAttribute(name, attrs[name]);
    });
    if (text) node.textContent = text;
    return node;
  }

  function param(name) {
    try { return new URLSearchParams(window.location.search).get(name) || ""; } catch (e) { return ""; }
  }

  function control(field, id) {
    var common = { id: id, name: field.key, required: field.required, "class": "patron-form-input" };
    if (field.type === "textarea") return el("textarea", common);
    if (field.type === "select") {
      var select = el("select", common);
      select.appendChild(el("option", { value: "" }));
      field.options.forEach(function (option) { select.appendChild(el("option", { value: option }, option)); });
      return select;
    }
    common.type = field.type;
    if (field.type === "checkbox") common.value = "yes";
    if (field.placeholder) common.placeholder = field.placeholder;
    return el("input", common);
  }

  function draw(holder, spec) {
    var form = el("form", { "class": "patron-form", novalidate: true });
    var prefix = "patron-" + holder.getAttribute("data-patron-form") + "-";
    if (spec.title) form.appendChild(el("h2", { "class": "patron-form-title" }, spec.title));
    var summary = el("div", { "class": "patron-form-problem", role: "alert", hidden: true });
    form.appendChild(summary);
    var errors = {};
    spec.fields.forEach(function (field) {
      if (field.type === "hidden") {
        form.appendChild(el("input", { type: "hidden", name: field.key, value: (field.source && param(field.source)) || field["default"] || "" }));
        return;
      }
      var row = el("p", { "class": "patron-form-field" });
      var id = prefix + field.key;
      var label = el("label", { "for": id }, field.label + (field.required ? " *" : ""));
      var input = control(field, id);
      if (field.type === "checkbox") { row.appendChild(input); row.appendChild(label); } else { row.appendChild(label); row.appendChild(input); }
      var error = el("span", { "class": "patron-form-error", id: id + "-error", hidden: true });
      row.appendChild(error);
      errors[field.key] = error;
      form.appendChild(row);
    });
    if (spec.consent_text) {
      var consent = el("p", { "class": "patron-form-field patron-form-consent" });
      consent.appendChild(el("input", { type: "checkbox", id: prefix + "consent", name: "consent", value: "yes" }));
      consent.appendChild(el("label", { "for": prefix + "consent" }, spec.consent_text));
      var consentError = el("span", { "class": "patron-form-error", hidden: true });
      consent.appendChild(consentError);
      errors.consent = consentError;
      form.appendChild(consent);
    }
    var trap = el("input", { type: "text", name: spec.honeypot, tabindex: "-1", autocomplete: "off", "aria-hidden": "true" });
    trap.style.position = "absolute";
    trap.style.left = "-9999px";
    form.appendChild(trap);
    var button = el("button", { type: "submit", "class": "patron-form-submit" }, spec.submit_label);
    form.appendChild(button);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var data = { _ts: spec.token, _page: window.location.href, _referrer: document.referrer };
      if (window.patronVisitorId) data._visitor = String(window.patronVisitorId);
      Array.prototype.forEach.call(form.elements, function (input) {
        if (!input.name) return;
        if (input.type === "checkbox") { if (input.checked) data[input.name] = input.value; } else data[input.name] = input.value;
      });
      Object.keys(errors).forEach(function (key) { errors[key].hidden = true; errors[key].textContent = ""; });
      summary.hidden = true;
      button.disabled = true;
      fetch(spec.action, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(data) })
        .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
        .then(function (result) {
          button.disabled = false;
          if (result.ok) {
            holder.dispatchEvent(new CustomEvent("patron:sent", { bubbles: true }));
            if (result.body.redirect_url) { window.location.href = result.body.redirect_url; return; }
            var done = el("div", { "class": "patron-form-sent", role: "status" });
            done.appendChild(el("p", {}, result.body.message));
            if (result.body.download_url) {
              var link = el("a", { "class": "patron-form-download", href: result.body.download_url }, "Download \u201c" + result.body.download_name + "\u201d");
              var line = el("p", {});
              line.appendChild(link);
              done.appendChild(line);
            }
            form.replaceWith(done);
            return;
          }
          var error = result.body.error || {};
          summary.textContent = error.message || "The form could not be sent.";
          summary.hidden = false;
          Object.keys(error.fields || {}).forEach(function (key) {
            if (errors[key]) { errors[key].textContent = error.fields[key].join(" "); errors[key].hidden = false; }
          });
        })
        .catch(function () {
          button.disabled = false;
          summary.textContent = "The form could not be sent. Check your connection and try again.";
          summary.hidden = false;
        });
    });
    holder.replaceChildren(form);
  }

  function mount(holder) {
    if (holder.hasAttribute("data-patron-drawn")) return;
    holder.setAttribute("data-patron-drawn", "");
    var base = (holder.getAttribute("data-patron-base") || "").replace(/\/$/, "");
    var key = encodeURIComponent(holder.getAttribute("data-patron-form"));
    fetch(base + "/f/" + key + "/embed.json", { credentials: "omit" })
      .then(function (response) { return response.json(); })
      .then(function (spec) { draw(holder, spec); });
  }

  window.patronForms = { mount: mount };
  document.querySelectorAll("[data-patron-form]").forEach(mount);
})();
