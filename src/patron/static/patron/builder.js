// The content editor component (mail/_content_editor.html): the block builder, the
// merge-tag picker, the image picker and the live preview. No framework.
//
// The design lives in the hidden input name="blocks" as JSON; this script draws the
// blocks from it (their forms come from the server's schema, #builder-schema) and writes
// it back on every change. The server validates it and writes the MJML: nothing here
// produces MJML or HTML for the message. Any change re-renders the preview (the form is
// posted into the sandboxed iframe) and the checks (htmx, on "content-changed").
(function () {
  "use strict";
  var root = document.querySelector("[data-content-editor]");
  if (!root) return;
  var form = root.closest("form");
  var checks = document.getElementById("content-checks");
  var frame = document.getElementById("preview-frame");
  var lastField = null; // where a merge tag goes: the last focused text field
  var lastRange = null; // and, in rich text, the caret there

  // --- Preview and checks, debounced -------------------------------------------------------
  var timer = null;
  var dirty = false; // unsaved changes: leaving the page asks first
  window.addEventListener("beforeunload", function (event) {
    if (dirty) event.preventDefault();
  });
  form.addEventListener("submit", function () { dirty = false; });
  function changed(edited) {
    if (edited !== false) dirty = true;
    clearTimeout(timer);
    timer = setTimeout(refresh, 500);
  }
  function refresh() {
    if (checks) checks.dispatchEvent(new Event("content-changed"));
    var action = form.getAttribute("action");
    var target = form.getAttribute("target");
    form.setAttribute("action", root.getAttribute("data-preview-url"));
    form.setAttribute("target", frame.name);
    HTMLFormElement.prototype.submit.call(form); // no submit event: no confirmations
    if (action === null) form.removeAttribute("action"); else form.setAttribute("action", action);
    if (target === null) form.removeAttribute("target"); else form.setAttribute("target", target);
  }
  // Choosing whom to preview as is no edit.
  var previewOnly = ["preview-contact-search", "preview-contact"];
  form.addEventListener("input", function (event) {
    if (previewOnly.indexOf(event.target.id) < 0) changed();
  });
  form.addEventListener("change", function (event) {
    if (event.target.id === "preview-contact") changed(false);
    else if (previewOnly.indexOf(event.target.id) < 0) changed();
  });

  // A new search replaces the contact list (and the choice): preview as the new choice.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (event.target.id === "preview-contact" && event.detail.requestConfig.verb === "get" &&
        event.target.getAttribute("data-loaded")) changed(false);
    if (event.target.id === "preview-contact") event.target.setAttribute("data-loaded", "1");
  });

  root.addEventListener("click", function (event) {
    var width = event.target.closest("[data-preview-width]");
    if (!width) return;
    document.getElementById("preview-wrap").setAttribute("data-width", width.getAttribute("data-preview-width"));
    root.querySelectorAll("[data-preview-width]").forEach(function (button) {
      var on = button === width;
      button.classList.toggle("active", on);
      button.setAttribute("aria-pressed", on ? "true" : "false");
    });
  });

  // --- Merge tags -------------------------------------------------------------------------
  root.addEventListener("focusin", function (event) {
    var field = event.target;
    if (field.matches("input[type=text], input:not([type]), textarea, [contenteditable=true]")) lastField = field;
  });
  document.addEventListener("selectionchange", function () {
    var selection = window.getSelection();
    if (!selection.rangeCount) return;
    var node = selection.anchorNode;
    var editable = node && (node.nodeType === 1 ? node : node.parentElement).closest("[contenteditable=true]");
    if (editable && root.contains(editable)) lastRange = selection.getRangeAt(0).cloneRange();
  });
  root.addEventListener("click", function (event) {
    var item = event.target.closest("[data-merge-tag]");
    if (!item) return;
    insertText(lastField || document.getElementById("content-subject"), item.getAttribute("data-merge-tag"));
  });
  function insertText(field, text) {
    if (field.isContentEditable) {
      field.focus();
      var selection = window.getSelection();
      if (lastRange && field.contains(lastRange.startContainer)) {
        selection.removeAllRanges();
        selection.addRange(lastRange);
      }
      document.execCommand("insertText", false, text);
    } else {
      var start = field.selectionStart === null ? field.value.length : field.selectionStart;
      field.focus();
      field.setRangeText(text, start, field.selectionEnd === null ? start : field.selectionEnd, "end");
    }
    field.dispatchEvent(new Event("input", { bubbles: true }));
  }

  // --- The builder ------------------------------------------------------------------------
  var input = document.getElementById("content-blocks");
  var list = document.getElementById("builder-blocks");
  if (!input || !list) {
    refresh(); // the code view: the first preview once the page is ready
    return;
  }
  var schema = JSON.parse(document.getElementById("builder-schema").textContent);
  var segments = JSON.parse(document.getElementById("builder-segments").textContent);
  // Landing pages: the workspace's forms, for the form block.
  var formsData = document.getElementById("builder-forms");
  var forms = formsData ? JSON.parse(formsData.textContent) : [];
  var types = {};
  schema.types.forEach(function (type) { types[type.type] = type; });
  var doc = JSON.parse(input.value || "{}");
  if (!doc.blocks) doc = { version: 1, settings: {}, blocks: [] };
  var open = -1; // the block whose form is shown
  var invalid = parseInt(root.getAttribute("data-invalid-block") || "0", 10); // 1-based, 0: none
  var picking = null; // the image field the picker fills

  function save() {
    input.value = JSON.stringify(doc);
    changed();
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }
  function plain(html) {
    var holder = document.createElement("div");
    holder.innerHTML = (html || "").replace(/<\/(p|li)>/g, " $&");
    return holder.textContent;
  }
  function summary(block) {
    if (block.type === "form") {
      var chosen = forms.filter(function (f) { return f.id === block.form; })[0];
      return chosen ? chosen.name : "";
    }
    var text = block.text || block.label || block.alt || block.src || "";
    if (block.type === "columns") text = block.columns.map(function (c) { return plain(c.text); }).join(" | ");
    text = plain(text).trim();
    return text.length > 70 ? text.slice(0, 70) + "…" : text;
  }

  function render() {
    list.textContent = "";
    doc.blocks.forEach(function (block, index) {
      var type = types[block.type] || { label: block.type, fields: [] };
      var name = type.label + " (block " + (index + 1) + ")";
      var segment = block.segment ? segments.filter(function (s) { return s.id === block.segment; })[0] : null;
      var head = el("div", { class: "d-flex align-items-center gap-2" }, [
        el("span", { class: "builder-handle text-body-secondary", "aria-hidden": "true", text: "⠿" }),
        el("strong", { class: "small builder-type", text: type.label }),
        el("span", { class: "small text-body-secondary text-truncate flex-grow-1 builder-summary", text: summary(block) }),
        segment ? el("span", { class: "badge text-bg-info", text: segment.name }) : null,
        button("↑", "Move up: " + name, "up", index === 0),
        button("↓", "Move down: " + name, "down", index === doc.blocks.length - 1),
        button(open === index ? "Close" : "Edit", (open === index ? "Close: " : "Edit: ") + name, "edit"),
        button("Delete", "Delete: " + name, "delete")
      ]);
      var item = el("li", {
        class: "builder-block card card-body p-2 mb-2" + (open === index ? " border-primary" : ""),
        "data-index": String(index), "data-type": block.type, draggable: "true",
        "aria-label": type.label + " " + (index + 1)
      }, [head]);
      if (open === index) item.appendChild(blockForm(block, type));
      list.appendChild(item);
    });
    if (!doc.blocks.length) list.appendChild(el("li", { class: "text-body-secondary small p-3 border rounded", text: "No blocks yet: add one with the buttons above." }));
    markInvalid();
  }
  // The block the server refused (its message is in the checks) is outlined in red.
  function markInvalid() {
    list.querySelectorAll(".builder-block").forEach(function (item) {
      var wrong = parseInt(item.getAttribute("data-index"), 10) === invalid - 1;
      item.classList.toggle("border-danger", wrong);
      if (wrong) item.setAttribute("aria-invalid", "true");
      else item.removeAttribute("aria-invalid");
    });
  }
  document.addEventListener("htmx:afterSwap", function () {
    var result = document.getElementById("checks-result");
    if (!result) return;
    invalid = parseInt(result.getAttribute("data-invalid-block") || "0", 10);
    markInvalid();
  });
  function button(text, label, action, disabled) {
    var b = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", "data-block-action": action, "aria-label": label, text: text });
    if (disabled) b.disabled = true;
    return b;
  }

  function blockForm(block, type) {
    var box = el("div", { class: "builder-form mt-2 pt-2 border-top" });
    type.fields.concat(schema.common).forEach(function (spec) {
      box.appendChild(control(spec, block, spec.name, "b" + list.children.length + "-" + spec.name));
    });
    return box;
  }

  function control(spec, holder, key, id) {
    var wrap = el("div", { class: "mb-2" });
    var label = el("label", { class: "form-label small mb-1", for: id, text: spec.label });
    var value = holder[key] === undefined || holder[key] === null ? "" : holder[key];
    var field;
    function set(v) { holder[key] = v; save(); updateSummary(); }
    if (spec.kind === "rich") {
      wrap.appendChild(el("span", { class: "form-label small mb-1 d-block", id: id + "-label", text: spec.label }));
      var toolbar = el("div", { class: "btn-toolbar gap-1 mb-1", role: "toolbar", "aria-label": spec.label + " formatting" }, [
        fmt("B", "Bold", "bold"), fmt("I", "Italic", "italic"), fmt("Link", "Link", "createLink"),
        fmt("• List", "Bulleted list", "insertUnorderedList"), fmt("1. List", "Numbered list", "insertOrderedList"),
        fmt("Clear", "Remove formatting", "removeFormat")
      ]);
      field = el("div", { class: "form-control rich-text", contenteditable: "true", role: "textbox", "aria-multiline": "true", "aria-labelledby": id + "-label", id: id });
      field.innerHTML = value;
      field.addEventListener("input", function () { set(field.innerHTML); });
      toolbar.addEventListener("click", function (event) {
        var b = event.target.closest("[data-format]");
        if (!b) return;
        field.focus();
        var command = b.getAttribute("data-format");
        var argument = null;
        if (command === "createLink") {
          argument = window.prompt("Link address (https://…)", "https://");
          if (!argument) return;
        }
        document.execCommand(command, false, argument);
        set(field.innerHTML);
      });
      wrap.appendChild(toolbar);
      wrap.appendChild(field);
      return wrap;
    }
    if (spec.kind === "items") {
      var fieldset = el("fieldset", { class: "border rounded p-2" }, [el("legend", { class: "small fw-semibold float-none w-auto px-1 mb-0", text: spec.label })]);
      var row = el("div", { class: "row g-2" });
      value.forEach(function (item, n) {
        var column = el("div", { class: "col-md builder-column" }, [el("div", { class: "small fw-semibold", text: "Column " + (n + 1) })]);
        spec.items.forEach(function (sub) { column.appendChild(control(sub, item, sub.name, id + "-" + n + "-" + sub.name)); });
        row.appendChild(column);
      });
      fieldset.appendChild(row);
      var actions = el("div", { class: "d-flex gap-2 mt-2" });
      if (value.length < spec.max) actions.appendChild(el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", "data-column-action": "add", text: "Add a column" }));
      if (value.length > spec.min) actions.appendChild(el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", "data-column-action": "remove", text: "Remove the last column" }));
      actions.addEventListener("click", function (event) {
        var b = event.target.closest("[data-column-action]");
        if (!b) return;
        if (b.getAttribute("data-column-action") === "add") {
          var blank = {};
          spec.items.forEach(function (sub) { blank[sub.name] = sub.default; });
          value.push(blank);
        } else value.pop();
        save();
        render();
      });
      fieldset.appendChild(actions);
      wrap.appendChild(fieldset);
      return wrap;
    }
    if (spec.kind === "choice" || spec.kind === "segment" || spec.kind === "form") {
      field = el("select", { class: "form-select form-select-sm", id: id });
      var options = spec.kind === "segment"
        ? [["", "Everyone"]].concat(segments.map(function (s) { return [String(s.id), s.name]; }))
        : spec.kind === "form"
          ? [["", "Choose a form"]].concat(forms.map(function (f) { return [String(f.id), f.name]; }))
          : spec.choices;
      options.forEach(function (option) {
        var o = el("option", { value: option[0], text: option[1] });
        if (String(value) === option[0]) o.selected = true;
        field.appendChild(o);
      });
      field.addEventListener("change", function () {
        set(spec.kind === "segment" || spec.kind === "form" ? (field.value ? parseInt(field.value, 10) : null) : field.value);
        if (spec.kind === "segment") render();
      });
    } else if (spec.kind === "int") {
      field = el("input", { type: "number", class: "form-control form-control-sm", id: id, min: String(spec.min), max: String(spec.max), value: String(value) });
      field.addEventListener("input", function () { set(field.value === "" ? 0 : parseInt(field.value, 10)); });
    } else {
      field = el("input", { type: "text", class: "form-control form-control-sm", id: id, value: String(value) });
      if (spec.kind === "color") field.setAttribute("placeholder", "#1a2b3c");
      if (spec.kind === "url") field.setAttribute("placeholder", "https://");
      field.addEventListener("input", function () { set(field.value); });
    }
    wrap.appendChild(label);
    if (spec.kind === "color") {
      // A native colour picker beside the text box; the text box may stay empty.
      var swatch = el("input", { type: "color", class: "form-control form-control-color form-control-sm flex-grow-0", "aria-label": spec.label + " (picker)", value: /^#[0-9a-f]{6}$/i.test(value) ? value : "#ffffff" });
      swatch.addEventListener("input", function () { field.value = swatch.value; set(swatch.value); });
      field.addEventListener("input", function () { if (/^#[0-9a-f]{6}$/i.test(field.value)) swatch.value = field.value; });
      wrap.appendChild(el("div", { class: "input-group input-group-sm" }, [swatch, field]));
    } else if (spec.kind === "image") {
      var pick = el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", text: "Choose from library" });
      pick.addEventListener("click", function () { openPicker(holder, key, field); });
      wrap.appendChild(el("div", { class: "input-group input-group-sm" }, [field, pick]));
    } else wrap.appendChild(field);
    if (spec.help) wrap.appendChild(el("div", { class: "form-text", text: spec.help }));
    return wrap;
  }
  function fmt(text, label, command) {
    return el("button", { type: "button", class: "btn btn-sm btn-outline-secondary", "data-format": command, "aria-label": label, title: label, text: text });
  }
  function updateSummary() {
    var item = list.querySelector('[data-index="' + open + '"] .builder-summary');
    if (item && doc.blocks[open]) item.textContent = summary(doc.blocks[open]);
  }

  document.getElementById("builder-add").addEventListener("click", function (event) {
    var b = event.target.closest("[data-add-block]");
    if (!b) return;
    var block = JSON.parse(JSON.stringify(types[b.getAttribute("data-add-block")].defaults));
    // New blocks go above the footer, where content belongs.
    var at = doc.blocks.length;
    if (at && doc.blocks[at - 1].type === "footer" && block.type !== "footer") at -= 1;
    doc.blocks.splice(at, 0, block);
    open = at;
    save();
    render();
    var first = list.querySelector('[data-index="' + at + '"] .builder-form input, [data-index="' + at + '"] .builder-form [contenteditable]');
    if (first) first.focus();
  });

  list.addEventListener("click", function (event) {
    var b = event.target.closest("[data-block-action]");
    if (!b) return;
    var index = parseInt(b.closest("[data-index]").getAttribute("data-index"), 10);
    var action = b.getAttribute("data-block-action");
    if (action === "edit") open = open === index ? -1 : index;
    else if (action === "delete") {
      doc.blocks.splice(index, 1);
      open = -1;
    } else move(index, action === "up" ? index - 1 : index + 1);
    if (action !== "edit") save();
    render();
  });
  function move(from, to) {
    if (to < 0 || to >= doc.blocks.length) return;
    var block = doc.blocks.splice(from, 1)[0];
    doc.blocks.splice(to, 0, block);
    if (open === from) open = to;
    else if (open === to) open = from;
  }

  // Drag a block by its card; the arrows do the same without a mouse.
  var dragging = null;
  list.addEventListener("dragstart", function (event) {
    var item = event.target.closest && event.target.closest(".builder-block");
    if (!item || event.target.closest(".builder-form")) return;
    dragging = parseInt(item.getAttribute("data-index"), 10);
    event.dataTransfer.effectAllowed = "move";
    event.dataTransfer.setData("text/plain", String(dragging));
  });
  list.addEventListener("dragover", function (event) {
    if (dragging === null) return;
    event.preventDefault();
  });
  list.addEventListener("drop", function (event) {
    var item = event.target.closest(".builder-block");
    if (dragging === null || !item) return;
    event.preventDefault();
    var to = parseInt(item.getAttribute("data-index"), 10);
    if (to !== dragging) {
      var block = doc.blocks.splice(dragging, 1)[0];
      doc.blocks.splice(to, 0, block);
      open = -1;
      save();
      render();
    }
    dragging = null;
  });
  list.addEventListener("dragend", function () { dragging = null; });

  // Design settings: colours and font.
  var settingsBox = document.getElementById("builder-settings");
  doc.settings = doc.settings || {};
  schema.settings.forEach(function (spec) {
    if (doc.settings[spec.name] === undefined) doc.settings[spec.name] = spec.default;
    settingsBox.appendChild(control(spec, doc.settings, spec.name, "settings-" + spec.name));
  });

  // --- The image picker ---------------------------------------------------------------------
  var modalEl = document.getElementById("image-picker");
  var gallery = document.getElementById("image-picker-list");
  var upload = document.getElementById("image-picker-upload");
  var uploadError = document.getElementById("image-picker-error");
  function csrf() { return form.querySelector("[name=csrfmiddlewaretoken]").value; }
  function openPicker(holder, key, field) {
    picking = { holder: holder, key: key, field: field };
    gallery.textContent = "Loading…";
    fetch(root.getAttribute("data-images-url"), { credentials: "same-origin" })
      .then(function (response) { return response.json(); })
      .then(function (data) { showImages(data.images); });
    window.bootstrap.Modal.getOrCreateInstance(modalEl).show();
  }
  function showImages(images) {
    gallery.textContent = images.length ? "" : "No images yet: upload one above.";
    images.forEach(function (image) {
      var choose = el("button", { type: "button", class: "btn btn-outline-secondary p-1 w-100 h-100", "data-image-url": image.url, "aria-label": "Use " + image.name }, [
        el("img", { src: image.url, alt: "", class: "img-fluid image-thumb" }),
        el("span", { class: "d-block small text-truncate", text: image.name })
      ]);
      gallery.appendChild(el("div", { class: "col" }, [choose]));
    });
  }
  gallery.addEventListener("click", function (event) {
    var b = event.target.closest("[data-image-url]");
    if (!b || !picking) return;
    picking.holder[picking.key] = b.getAttribute("data-image-url");
    picking.field.value = picking.holder[picking.key];
    window.bootstrap.Modal.getOrCreateInstance(modalEl).hide();
    save();
  });
  upload.addEventListener("change", function () {
    if (!upload.files.length) return;
    var data = new FormData();
    data.append("file", upload.files[0]);
    upload.classList.remove("is-invalid");
    fetch(root.getAttribute("data-upload-url"), {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-CSRFToken": csrf(), Accept: "application/json" }
    }).then(function (response) {
      return response.json().then(function (body) { return { ok: response.ok, body: body }; });
    }).then(function (result) {
      upload.value = "";
      if (!result.ok) {
        uploadError.textContent = result.body.error;
        upload.classList.add("is-invalid");
        return;
      }
      return fetch(root.getAttribute("data-images-url"), { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) { showImages(data.images); });
    });
  });

  render();
  input.value = JSON.stringify(doc);
  // The first preview once the page is ready.
  refresh();
})();
