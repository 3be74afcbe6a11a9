// The review page's script: it draws the embedded records and computes no number of its own.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("page-data").textContent);
  var model = data.model;
  var items = data.conversations;
  var indicators = data.indicators;
  var selected = -1;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function fixed(x) { return Number(x).toFixed(3); }
  function label(code) { return code.replace(/_/g, " "); }
  function chip(code) {
    var node = el("span", "chip", label(code));
    node.title = indicators[code] || code;
    node.dataset.indicator = code;
    return node;
  }
  function mix(a, b, f) {
    return "rgb(" + a.map(function (v, i) { return Math.round(v + (b[i] - v) * f); }).join(",") + ")";
  }
  function heat(score) {
    // The scale bends at the threshold: near white to amber below it, amber to deep red above it.
    var t = Math.max(1e-9, Math.min(1 - 1e-9, Number(model.threshold)));
    var x = Math.max(0, Math.min(1, Number(score)));
    return x < t ? mix([246, 247, 249], [246, 196, 92], x / t) : mix([240, 150, 60], [150, 20, 20], (x - t) / (1 - t));
  }
  function codesOf(record) {
    var seen = {};
    record.evidence.forEach(function (line) { line.indicators.forEach(function (c) { seen[c] = true; }); });
    return Object.keys(seen);
  }

  // -- header -------------------------------------------------------------------------
  document.getElementById("source").textContent = data.source;
  document.getElementById("intended-use-line").textContent = data.intended_use;
  var card = document.getElementById("intended-use-card");
  if (model.intended_use.length) {
    model.intended_use.forEach(function (p) { card.appendChild(el("p", null, p)); });
  } else {
    card.appendChild(el("p", "muted", "The bundle's model card has no intended-use section."));
  }
  var facts = document.getElementById("model-facts");
  function fact(name, value) {
    var span = el("span");
    span.appendChild(el("b", null, name + ": "));
    span.appendChild(document.createTextNode(value));
    facts.appendChild(span);
    return span;
  }
  fact("model", model.directory + (model.provenance.run_id ? " (run " + model.provenance.run_id + ")" : ""));
  fact("threshold", fixed(model.threshold)).dataset.threshold = String(model.threshold);
  fact("warning rule", model.rule.k + " of the last " + model.rule.last + " window scores at or above the threshold, windows of " + model.rule.window + " messages");
  var privacy = fact("privacy", model.privacy.length ? model.privacy[0] : "not stated in the bundle's model card");
  privacy.id = "privacy";
  if (model.privacy.length > 1) {
    var perNode = el("details", "per-node");
    perNode.appendChild(el("summary", null, "per node"));
    model.privacy.slice(1).forEach(function (line) { perNode.appendChild(el("div", null, line)); });
    privacy.appendChild(perNode);
    perNode.addEventListener("toggle", function () { fit(); });
  }

  // -- the list -----------------------------------------------------------------------
  var order = items.map(function (_, i) { return i; });
  order.sort(function (a, b) {
    var ra = items[a].record, rb = items[b].record;
    if (ra.alert !== rb.alert) return ra.alert ? -1 : 1;
    if (ra.score !== rb.score) return rb.score - ra.score;
    return a - b;
  });
  var present = {};
  items.forEach(function (item) { codesOf(item.record).forEach(function (c) { present[c] = true; }); });
  var select = document.getElementById("filter-indicator");
  Object.keys(indicators).filter(function (c) { return present[c]; }).forEach(function (code) {
    var option = el("option", null, label(code));
    option.value = code;
    select.appendChild(option);
  });

  var list = document.getElementById("conversations");
  var rows = [];
  order.forEach(function (index) {
    var record = items[index].record;
    var li = el("li", "conv" + (record.alert ? " warned" : ""));
    li.setAttribute("role", "option");
    li.dataset.index = String(index);
    li.dataset.id = record.id;
    li.dataset.alert = String(record.alert);
    li.dataset.score = String(record.score);
    li.appendChild(el("span", "cid", record.id));
    li.appendChild(el("span", "cscore", fixed(record.score)));
    var bar = el("span", "bar");
    var fill = el("span");
    fill.style.width = (100 * Math.max(0, Math.min(1, record.score))) + "%";
    bar.appendChild(fill);
    li.appendChild(bar);
    var meta = el("span", "cmeta");
    if (record.alert) meta.appendChild(el("span", "badge", "WARNING at message " + record.alert_at));
    else if (record.score >= model.threshold) meta.appendChild(el("span", "muted", "flagged, no warning "));
    meta.appendChild(document.createTextNode(items[index].messages.length + " messages "));
    codesOf(record).forEach(function (c) { meta.appendChild(chip(c)); });
    li.appendChild(meta);
    li.addEventListener("click", function () { show(index); });
    list.appendChild(li);
    rows.push(li);
  });

  var warnedOnly = document.getElementById("filter-warned");
  var minScore = document.getElementById("filter-score");
  var search = document.getElementById("filter-search");
  function passes(record) {
    if (warnedOnly.checked && !record.alert) return false;
    var floor = parseFloat(minScore.value);
    if (!isNaN(floor) && record.score < floor) return false;
    if (select.value && codesOf(record).indexOf(select.value) < 0) return false;
    var needle = search.value.trim().toLowerCase();
    if (needle && record.id.toLowerCase().indexOf(needle) < 0) return false;
    return true;
  }
  function applyFilters() {
    var shown = 0;
    rows.forEach(function (li) {
      var ok = passes(items[Number(li.dataset.index)].record);
      li.hidden = !ok;
      if (ok) shown += 1;
    });
    var warned = items.filter(function (item) { return item.record.alert; }).length;
    document.getElementById("count").textContent =
      shown + " of " + items.length + " conversations shown; " + warned + " warned";
  }
  [warnedOnly, minScore, select, search].forEach(function (input) {
    input.addEventListener("input", applyFilters);
    input.addEventListener("change", applyFilters);
  });
  applyFilters();

  // -- one conversation ---------------------------------------------------------------
  function verdict(record, messageCount) {
    var p = el("p", "verdict" + (record.alert ? " warned" : ""));
    if (record.alert) {
      p.appendChild(el("strong", null, "Warning raised at message " + record.alert_at + " of " + messageCount + ". "));
    } else if (record.score >= model.threshold) {
      p.appendChild(el("strong", null, "Flagged, no early warning. "));
    } else {
      p.appendChild(el("strong", null, "Not flagged. "));
    }
    p.appendChild(document.createTextNode("Highest window score " + fixed(record.score) + " (threshold " + fixed(model.threshold) + ")."));
    if (record.suspect !== null) {
      p.appendChild(document.createTextNode(" Suspect: "));
      p.appendChild(el("span", "suspect", record.suspect));
      p.appendChild(document.createTextNode("."));
    }
    return p;
  }

  function strip(record, jump) {
    var wrap = el("div", "strip-wrap");
    wrap.appendChild(el("h3", null, "Risk after each message (window score)"));
    var bar = el("div", "strip");
    bar.setAttribute("role", "img");
    bar.setAttribute("aria-label", "window score after each of " + record.window_scores.length + " scored messages");
    record.window_scores.forEach(function (score, i) {
      var cell = el("div", "cell" + (score >= model.threshold ? " over" : "") + (record.alert_at === i + 1 ? " alert-cell" : ""));
      cell.style.background = heat(score);
      cell.dataset.line = String(i + 1);
      cell.dataset.score = String(score);
      cell.title = "after message " + (i + 1) + ": " + fixed(score);
      cell.addEventListener("click", function () { jump(i + 1); });
      bar.appendChild(cell);
    });
    wrap.appendChild(bar);
    var legend = el("div", "strip-legend");
    legend.appendChild(el("span", null, "message 1"));
    legend.appendChild(el("span", null, "pale: low, amber: at the threshold, red: above it (underlined); \u26A0 the warning"));
    legend.appendChild(el("span", null, "message " + record.window_scores.length));
    wrap.appendChild(legend);
    return wrap;
  }

  function show(index) {
    if (index < 0 || index >= items.length) return;
    selected = index;
    rows.forEach(function (li) {
      var on = Number(li.dataset.index) === index;
      li.classList.toggle("selected", on);
      li.setAttribute("aria-selected", String(on));
      if (on) li.scrollIntoView({ block: "nearest" });
    });
    var item = items[index], record = item.record;
    var detail = document.getElementById("detail");
    detail.textContent = "";
    detail.dataset.id = record.id;
    detail.appendChild(el("h2", null, record.id));
    detail.appendChild(verdict(record, item.messages.length));
    var byLine = {};
    record.evidence.forEach(function (line) { byLine[line.line] = line; });
    var messageRows = {};
    function jump(line) {
      var row = messageRows[line];
      if (!row) return;
      row.scrollIntoView({ block: "center" });
      row.classList.add("flash");
      setTimeout(function () { row.classList.remove("flash"); }, 900);
    }
    if (record.evidence.length) {
      detail.appendChild(el("h3", null, "Why: the lines that raised the risk"));
      var why = el("ol", "why");
      record.evidence.forEach(function (line) {
        var li = el("li");
        var button = el("button");
        button.type = "button";
        button.appendChild(el("strong", null, Math.round(line.weight * 100) + "% "));
        button.appendChild(document.createTextNode("message " + line.line + " by " + line.author + " "));
        line.indicators.forEach(function (c) { button.appendChild(chip(c)); });
        var text = item.messages[line.line - 1] ? item.messages[line.line - 1].text : "";
        button.appendChild(el("span", "muted", " \u201C" + (text.length > 90 ? text.slice(0, 90) + "\u2026" : text) + "\u201D"));
        button.addEventListener("click", function () { jump(line.line); });
        li.appendChild(button);
        why.appendChild(li);
      });
      detail.appendChild(why);
    }
    detail.appendChild(strip(record, jump));
    detail.appendChild(el("h3", null, "Messages"));
    var ol = el("ol", "messages");
    item.messages.forEach(function (message, i) {
      var line = i + 1;
      var evidence = byLine[line];
      var scored = i < record.window_scores.length;
      var li = el("li", "msg" + (evidence ? " evidence" : "") + (scored ? "" : " unscored") +
        (record.suspect !== null && message.author === record.suspect ? " suspect-author" : "") +
        (record.alert_at === line ? " alert-at" : ""));
      li.dataset.line = String(line);
      if (scored) li.style.borderLeftColor = heat(record.window_scores[i]);
      if (evidence) { li.dataset.weight = String(evidence.weight); li.style.borderLeftColor = ""; }
      li.appendChild(el("span", "num", line));
      var who = el("span", "who", message.author + (record.suspect !== null && message.author === record.suspect ? " (suspect)" : ""));
      who.appendChild(el("span", "time", message.time || ""));
      li.appendChild(who);
      var body = el("span", "text");
      if (evidence) {
        body.appendChild(el("span", "weight", "evidence " + Math.round(evidence.weight * 100) + "%"));
        evidence.indicators.forEach(function (c) { body.appendChild(chip(c)); });
        body.appendChild(document.createElement("br"));
      }
      body.appendChild(document.createTextNode(message.text));
      if (message.cut) body.appendChild(el("span", "note", " [cut: only the first part is shown and scored]"));
      body.appendChild(el("span", "risk", scored ? "risk after this message " + fixed(record.window_scores[i]) : "not scored (past the first " + model.max_messages + " messages)"));
      li.appendChild(body);
      ol.appendChild(li);
      messageRows[line] = li;
      if (record.alert_at === line) {
        var marker = el("li", "alert-marker", "\u26A0 Warning raised here, after message " + line + ": " +
          model.rule.k + " of the last " + model.rule.last + " window scores reached the threshold " + fixed(model.threshold) +
          " (this one: " + fixed(record.window_scores[i]) + ")");
        marker.dataset.line = String(line);
        marker.setAttribute("role", "note");
        ol.appendChild(marker);
      }
    });
    detail.appendChild(ol);
    detail.scrollTop = 0;
  }

  // -- keys ---------------------------------------------------------------------------
  function step(delta) {
    var visible = rows.filter(function (li) { return !li.hidden; });
    if (!visible.length) return;
    var at = visible.findIndex(function (li) { return Number(li.dataset.index) === selected; });
    var next = at < 0 ? (delta > 0 ? 0 : visible.length - 1) : Math.max(0, Math.min(visible.length - 1, at + delta));
    show(Number(visible[next].dataset.index));
  }
  document.addEventListener("keydown", function (event) {
    var tag = event.target && event.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA") {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "j" || event.key === "ArrowDown") { step(1); event.preventDefault(); }
    else if (event.key === "k" || event.key === "ArrowUp") { step(-1); event.preventDefault(); }
    else if (event.key === "/") { search.focus(); event.preventDefault(); }
  });

  function fit() {
    document.documentElement.style.setProperty("--top", document.querySelector(".top").offsetHeight + "px");
  }
  window.addEventListener("resize", fit);
  document.querySelector(".banner details").addEventListener("toggle", fit);
  fit();
  if (order.length) show(order[0]);
})();
