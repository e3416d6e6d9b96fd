/* The operator desk's own script: live events (EventSource), the call pop, the case form's
   draft (localStorage), unit picker, suggestions and checks.  No outside code but htmx, vendored beside it. */
(function () {
  "use strict";
  var body = document.body;

  // ---------------------------------------------------------------- live events
  function onCall(msg) {
    var box = document.getElementById("call-pops");
    var old = box ? box.querySelector('.call-pop[data-linkedid="' + CSS.escape(msg.linkedid) + '"]') : null;
    if (msg.html && box) {
      var holder = document.createElement("div");
      holder.innerHTML = msg.html;
      var pop = holder.firstElementChild;
      if (old) old.replaceWith(pop);
      else box.prepend(pop);
      if (window.htmx) window.htmx.process(pop);  // its close / done buttons post with htmx
      var idle = box.querySelector(".idle");
      if (idle) idle.hidden = true;
      tick();
    } else if (old && msg.kind === "ring_stopped" && old.dataset.kind === "ringing") {
      old.remove();
    } else if (old && msg.kind === "done") {
      old.remove();
    } else if (old && msg.kind === "ended") {
      old.dataset.kind = "ended";
      old.classList.add("ended");
      var state = old.querySelector(".pop-state");
      if (state) state.textContent = state.dataset.ended;
    }
  }

  function connect() {
    if (!body.dataset.events || !window.EventSource) return;
    var source = new EventSource(body.dataset.events);
    source.addEventListener("ready", function () { body.dataset.live = "ready"; });
    source.addEventListener("call", function (e) { onCall(JSON.parse(e.data)); });
    source.addEventListener("calls", function (e) {
      body.dispatchEvent(new CustomEvent("hb:calls", { detail: JSON.parse(e.data) }));
    });
    source.addEventListener("callbacks", function (e) {
      body.dispatchEvent(new CustomEvent("hb:callbacks", { detail: JSON.parse(e.data) }));
    });
    source.addEventListener("case", function (e) {
      body.dispatchEvent(new CustomEvent("hb:case", { detail: JSON.parse(e.data) }));
    });
    source.addEventListener("presence", function (e) {
      body.dispatchEvent(new CustomEvent("hb:presence", { detail: JSON.parse(e.data) }));
    });
    var leaving = false;  // the page is going away by itself (e.g. its own sign-out): no second navigation
    window.addEventListener("beforeunload", function () { leaving = true; });
    source.addEventListener("signed_out", function () {  // ended on the server: sign in again
      source.close();
      if (!leaving) window.location.assign("/desk/login?ended=1");
    });
    source.onerror = function () { body.dataset.live = "reconnecting"; };  // EventSource retries by itself
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // "14 秒" under a minute, "1:05" beyond: as the server writes it (bridge/pbx/waits.py)
  function shortDuration(seconds, format) {
    seconds = Math.max(0, Math.round(seconds));
    if (seconds < 60) return format.replace("%(seconds)d", seconds);
    var m = Math.floor(seconds / 60), s = seconds % 60;
    return m + ":" + (s < 10 ? "0" : "") + s;
  }

  // A call not answered yet: its time in the menu, then in the queue, count up live.
  function tick() {
    document.querySelectorAll(".call-pop").forEach(function (pop) {
      var out = pop.querySelector(".pop-waits");
      if (!out || !pop.dataset.arrived || pop.dataset.answered || pop.dataset.kind !== "ringing") return;
      var arrived = Date.parse(pop.dataset.arrived), queued = pop.dataset.queued ? Date.parse(pop.dataset.queued) : null;
      var format = pop.dataset.seconds || "%(seconds)d s", labels = out.dataset;
      var now = Date.now();
      var menu = shortDuration(((queued || now) - arrived) / 1000, format);
      var text = (labels.menu || "%(time)s").replace("%(time)s", menu);
      if (queued) text += " · " + (labels.queue || "%(time)s").replace("%(time)s", shortDuration((now - queued) / 1000, format));
      out.textContent = text;
    });
  }

  // ------------------------------------------------------------ the case form
  function formDraft(form) {
    var key = form.dataset.draftKey;
    var skip = { csrf_token: 1, call_linkedid: 1, unit_search: 1 };  // a half-typed search is no choice
    function save() {
      var data = {};
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || skip[el.name] || el.type === "hidden") return;
        if (el.type === "checkbox") data[el.name] = el.checked;
        else if (el.type === "radio") { if (el.checked) data[el.name] = el.value; }
        else data[el.name] = el.value;
      });
      data._saved = Date.now();
      try { localStorage.setItem(key, JSON.stringify(data)); } catch (err) { /* private mode: no draft */ }
    }
    function offered(name, value) {
      return Array.prototype.some.call(form.elements, function (el) {
        return el.type === "radio" && el.name === name && el.value === value;
      });
    }
    function restore() {
      var raw = null;
      try { raw = localStorage.getItem(key); } catch (err) { return; }
      if (!raw) return;
      var data = JSON.parse(raw);
      Array.prototype.forEach.call(form.elements, function (el) {
        if (!el.name || !(el.name in data) || skip[el.name] || el.type === "hidden") return;
        if (el.type === "checkbox") el.checked = !!data[el.name];
        else if (el.type === "radio") {
          // a value no choice offers (a draft from when the best time was free text) keeps the preselected one
          if (offered(el.name, data[el.name])) el.checked = data[el.name] === el.value;
        }
        else el.value = data[el.name];
      });
      var note = document.getElementById("draft-note");
      if (note) note.hidden = false;
    }
    if (form.dataset.restore === "1") restore();
    form.addEventListener("input", save);
    form.addEventListener("change", save);
    var discard = document.getElementById("draft-discard");
    if (discard) discard.addEventListener("click", function () {
      localStorage.removeItem(key);
      window.location.reload();
    });
  }

  // The unit picker: typing only searches (name, code, pinyin initials, synonyms and their
  // initials: the terms bridge.departments.search gives each unit); a unit is chosen only by a
  // click or Enter on it, and the chosen one stays shown above the search box.  The hidden
  // <select> (the list without script) carries the chosen code.
  function unitPicker(form) {
    var select = form.querySelector("#department");
    var search = form.querySelector("#unit-search");
    var list = form.querySelector("#unit-options");
    var none = form.querySelector("#unit-none");
    var dataNode = document.getElementById("units-data");
    if (!select || !search || !list || !none || !dataNode) return null;
    var chosenName = form.querySelector("#unit-chosen-name");
    var chosenNone = form.querySelector("#unit-chosen-none");
    var chosenLabel = form.querySelector("#unit-chosen-label");
    var change = form.querySelector("#unit-change");
    var units = JSON.parse(dataNode.textContent);
    var byCode = {};
    units.forEach(function (u) { byCode[u.code] = u; });
    var shown = [], active = -1;
    select.hidden = true;
    if (select.getAttribute("aria-invalid") === "true") search.setAttribute("aria-invalid", "true");

    function finds(u, q) {
      return !q || u.terms.some(function (t) { return t.indexOf(q) >= 0; });
    }
    // the closest first: the name or a synonym itself, initials typed in full, a name or synonym
    // (then initials) starting with the query, a name or synonym containing it, the rest; ``via``
    // is the synonym that found the unit, shown beside its name
    function rank(u, q) {
      if (!q) return { rank: 0, via: "" };
      var name = u.name.toLowerCase(), initials = (u.initials || "").toLowerCase();
      var tests = [
        function (t) { return t === q; },
        null,
        function (t) { return t.indexOf(q) === 0; },
        null,
        function (t) { return t.indexOf(q) >= 0; },
      ];
      for (var r = 0; r < tests.length; r++) {
        var test = tests[r] || tests[r - 1];
        var texts = tests[r] ? [name].concat(u.synonyms) : [initials].concat(u.synonym_initials);
        for (var k = 0; k < texts.length; k++) {
          if (test(texts[k].toLowerCase())) return { rank: r, via: k ? u.synonyms[k - 1] : "" };
        }
      }
      return { rank: tests.length, via: "" };
    }
    function setActive(n) {
      active = n;
      Array.prototype.forEach.call(list.children, function (li, k) { li.classList.toggle("active", k === n); });
      if (n >= 0) {
        search.setAttribute("aria-activedescendant", list.children[n].id);
        list.children[n].scrollIntoView({ block: "nearest" });
      } else {
        search.removeAttribute("aria-activedescendant");
      }
    }
    function render() {
      var q = search.value.trim().toLowerCase();
      shown = [];
      units.forEach(function (u, i) {
        if (finds(u, q)) shown.push({ unit: u, order: i, found: rank(u, q) });
      });
      shown.sort(function (a, b) { return a.found.rank - b.found.rank || a.order - b.order; });
      list.textContent = "";
      shown.forEach(function (s) {
        var li = document.createElement("li");
        li.id = "unit-option-" + s.unit.code;
        li.dataset.code = s.unit.code;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", s.unit.code === select.value ? "true" : "false");
        li.textContent = s.unit.name;
        if (s.found.via) {
          var via = document.createElement("span");
          via.className = "via";
          via.textContent = s.found.via;
          li.append(" ", via);
        }
        list.append(li);
      });
      list.hidden = !shown.length;
      none.hidden = !!shown.length;
      none.textContent = shown.length ? "" : none.dataset.text.replace("{query}", search.value.trim());
      search.setAttribute("aria-expanded", shown.length ? "true" : "false");
      setActive(q && shown.length ? 0 : -1);
    }
    function showChoice() {
      var u = byCode[select.value];
      chosenName.textContent = u ? u.name : "";
      chosenName.dataset.code = u ? u.code : "";
      chosenNone.hidden = !!u;
      chosenLabel.hidden = change.hidden = !u;
    }
    function choose(code) {
      if (!byCode[code]) return;
      select.value = code;
      search.value = "";
      search.removeAttribute("aria-invalid");
      var error = document.getElementById("error-department");
      if (error) error.remove();
      render();
      showChoice();
      form.dispatchEvent(new Event("change"));  // the draft keeps it
    }
    search.addEventListener("input", render);
    search.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        e.preventDefault();
        if (!shown.length) return;
        var step = e.key === "ArrowDown" ? 1 : -1;
        setActive(active < 0 ? (step > 0 ? 0 : shown.length - 1) : (active + step + shown.length) % shown.length);
      } else if (e.key === "Enter" && !e.ctrlKey && !e.metaKey) {
        e.preventDefault();  // never the form's submit
        if (active >= 0) choose(shown[active].unit.code);
      } else if (e.key === "Escape" && search.value) {
        e.preventDefault();
        search.value = "";
        render();
      }
    });
    list.addEventListener("mousedown", function (e) {
      var li = e.target.closest("li[data-code]");
      if (!li) return;
      e.preventDefault();  // the search box keeps the focus
      choose(li.dataset.code);
      search.focus();
    });
    change.addEventListener("click", function () {
      select.value = "";
      showChoice();
      render();
      search.focus();
      form.dispatchEvent(new Event("change"));
    });
    form.addEventListener("click", function (e) {
      var b = e.target.closest(".suggest");
      if (b) choose(b.dataset.code);
    });
    render();
    showChoice();
    unitSuggestions(form, units);

    // what is wrong with the unit, in the page's messages (null: chosen and shown)
    return function problem(messages) {
      var q = search.value.trim();
      var u = byCode[select.value];
      if (!u) return q ? messages.only_typed.replace("{query}", q) : messages.not_chosen;
      if (q && !finds(u, q.toLowerCase())) return messages.not_shown.replace("{query}", q).replace("{name}", u.name);
      return null;
    };
  }

  // Units suggested by the words of the location, title and description.  Of the units sharing
  // words, the one the text names most precisely wins: 荷花街道荷五社区 names 荷五社区, not the
  // street's other four communities (the keyword 荷花街道 inside it is no reason for them).
  function unitSuggestions(form, units) {
    var words = form.querySelector(".from-words");
    var fields = ["location", "title", "description"].map(function (n) { return form.querySelector('[name="' + n + '"]'); })
      .filter(Boolean);
    function suggest() {
      var text = fields.map(function (f) { return f.value; }).join("\n");
      var found = [];
      units.forEach(function (u) {
        var all = (u.keywords || "").split(/\s+/).filter(function (w) { return w.length >= 2 && text.indexOf(w) >= 0; });
        // 荷花 inside 荷花街道 is the same hit
        var hits = all.filter(function (w) { return !all.some(function (o) { return o !== w && o.indexOf(w) >= 0; }); });
        if (hits.length) found.push({ unit: u, hits: hits, weight: hits.join("").length });
      });
      var kept = found.filter(function (f) {
        return !found.some(function (g) {
          return g.hits.length > f.hits.length && f.hits.every(function (w) { return g.hits.indexOf(w) >= 0; });
        });
      });
      kept.sort(function (a, b) { return b.weight - a.weight || b.hits.length - a.hits.length; });
      words.textContent = "";
      if (!kept.length) return;
      words.append(words.dataset.label + " ");
      kept.slice(0, 6).forEach(function (f) {
        var b = document.createElement("button");
        b.type = "button"; b.className = "suggest"; b.dataset.code = f.unit.code;
        b.textContent = f.unit.name + "（" + f.hits.join("、") + "）";
        words.append(b, " ");
      });
    }
    var timer = null;
    fields.forEach(function (f) {
      f.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(suggest, 300); });
    });
    suggest();
  }

  // The page's own messages beside the fields, in its language, instead of the browser's
  // tooltips (the form is novalidate); the server checks everything again.  Ctrl+Enter files.
  function formChecks(form, unitProblem) {
    var node = document.getElementById("form-messages");
    if (!node) return;
    var messages = JSON.parse(node.textContent);
    function anchor(name) {
      if (name === "department") return form.querySelector("#unit-none");
      var field = form.elements[name];
      if (field && field.length && field[0] && field[0].type === "radio") return null;
      return field;
    }
    function show(name, text) {
      var span = document.getElementById("error-" + name);
      if (!span) {
        span = document.createElement("span");
        span.className = "error";
        span.id = "error-" + name;
        span.dataset.field = name;
        span.dataset.client = "1";
        span.setAttribute("role", "alert");
        var after = anchor(name);
        if (after) after.after(span);
        else form.querySelector('[name="' + name + '"]').closest("[role=radiogroup]").append(span);
      }
      span.textContent = text;
      var target = name === "department" ? form.querySelector("#unit-search") : anchor(name);
      if (target) {
        target.setAttribute("aria-invalid", "true");
        target.setAttribute("aria-describedby", span.id);
        target.dataset.clientInvalid = "1";
      }
      return target || form.querySelector('[name="' + name + '"]');
    }
    function clear() {
      form.querySelectorAll("[data-client]").forEach(function (el) { el.remove(); });
      form.querySelectorAll("[data-client-invalid]").forEach(function (el) {
        el.removeAttribute("aria-invalid");
        el.removeAttribute("aria-describedby");
        delete el.dataset.clientInvalid;
      });
    }
    function value(name) {
      var field = form.elements[name];
      return field ? String(field.value || "").trim() : "";
    }
    function problems() {
      var found = [];
      Object.keys(messages.required).forEach(function (name) {
        if (!value(name)) found.push([name, messages.required[name]]);
        else if (messages.min_length[name] && value(name).length < messages.min_length[name]) {
          found.push([name, messages.too_short[name].replace("{length}", value(name).length)]);
        }
      });
      var unit = unitProblem ? unitProblem(messages.unit) : null;
      if (unit) found.push(["department", unit]);
      return found;
    }
    form.addEventListener("submit", function (e) {
      clear();
      var found = problems();
      if (!found.length) return;
      e.preventDefault();
      var first = null;
      found.forEach(function (p) { var el = show(p[0], p[1]); first = first || el; });
      if (!document.getElementById("form-errors")) {
        var alert = document.createElement("p");
        alert.className = "alert"; alert.id = "form-errors"; alert.dataset.client = "1";
        alert.setAttribute("role", "alert");
        alert.textContent = messages.not_filed;
        form.querySelector("h1").after(alert);
      }
      if (first && first.focus) first.focus();
    });
    form.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit(document.getElementById("file-case"));
      }
    });
  }

  function clearFiledDraft() {
    var filed = document.querySelector("[data-clear-draft]");
    if (filed && filed.dataset.clearDraft) {
      try { localStorage.removeItem(filed.dataset.clearDraft); } catch (err) { /* nothing stored */ }
    }
  }

  function start() {
    connect();
    setInterval(tick, 1000);
    var form = document.getElementById("case-form");
    if (form) { formDraft(form); formChecks(form, unitPicker(form)); }
    clearFiledDraft();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
