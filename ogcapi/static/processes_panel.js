// The Processes panel (/viewer): the server's OGC API – Processes (GET /processes), a form built from
// the chosen process's description (each input's JSON Schema: a point picked on the map, an area drawn
// or the view, numbers, strings, enums, booleans, release numbers; other values as JSON), run on
// "Run" (POST /processes/{id}/execution, {"inputs": {...}}), its GeoJSON outputs drawn in the result
// layer (coloured by "kind" / "change"), its other outputs (summaries) shown as tables.
// Synchronous when the process allows it; otherwise (or when the server answers 201 with a job) the
// job is followed (GET /jobs/{id}) to its results. The token field's value goes along as a bearer
// token (role-protected processes). ctx.execute(id, inputs) -> Promise of {ok, outputs, error, status}
// is what the parcel inspector uses too.
// Status: "planner.processes": {"state": "loading" | "ready" | "absent" | "error", "count", "selected",
//   "last": {"id", "state": "running" | "successful" | "failed", "status", "features", "outputs",
//   "kinds": {kind or change: n}, "error"}}.
(function () {
  "use strict";
  var POLL_MS = 500, POLL_LIMIT = 600;
  var FINISHED = { successful: true, failed: true, dismissed: true };

  function isFeatures(v) { return v && typeof v === "object" && (v.type === "FeatureCollection" || v.type === "Feature"); }
  function asCollection(v) { return v.type === "Feature" ? { type: "FeatureCollection", features: [v] } : v; }

  // the results as {outputId: value}: document responses, raw (one output), OGC 1.0 "outputs" lists, qualified values
  function outputsOf(body, description) {
    var ids = Object.keys((description && description.outputs) || {});
    var out = body;
    if (body && Array.isArray(body.outputs)) {
      out = {};
      body.outputs.forEach(function (o) { out[o.id] = o.value !== undefined ? o.value : o; });
    } else if (!body || typeof body !== "object" || isFeatures(body) || !ids.some(function (id) { return id in body; })) {
      out = {};
      out[ids.length === 1 ? ids[0] : "result"] = body;
    }
    Object.keys(out).forEach(function (k) {
      var v = out[k];
      if (v && typeof v === "object" && !isFeatures(v) && "value" in v && Object.keys(v).length <= 3) out[k] = v.value;
    });
    return out;
  }

  function geometryKind(schema) {
    var text = JSON.stringify(schema || {});
    if (text.indexOf("geojson-geometry") < 0 && text.indexOf('"coordinates"') < 0) return null;
    var point = /"const":"Point"/.test(text), polygon = /Polygon/.test(text), line = /LineString/.test(text);
    if (point && !polygon && !line) return "point";
    if (polygon && !line) return "area";
    return "geometry";
  }

  function baseType(schema) {
    var t = schema.type;
    if (Array.isArray(t)) t = t.filter(function (x) { return x !== "null"; })[0];
    return t;
  }

  window.cimPlanner.register(function (ctx) {
    var config = ctx.config;
    var select = document.getElementById("process-select"), form = document.getElementById("process-form");
    var resultEl = document.getElementById("process-result");
    var state = ctx.status.planner.processes = { state: "loading", count: 0, selected: null, last: null };
    var descriptions = {};

    function describe(id) {
      if (descriptions[id]) return Promise.resolve(descriptions[id]);
      return ctx.api.get(config.processes + "/" + encodeURIComponent(id) + "?f=json").then(function (a) {
        if (!a.ok) throw new Error(id + ": " + ctx.api.reason(a));
        descriptions[id] = a.body;
        return a.body;
      });
    }

    function follow(location, description) {  // a job: poll its statusInfo, then fetch its results
      var tries = 0;
      function poll() {
        return ctx.api.get(location).then(function (a) {
          if (!a.ok) return { ok: false, status: a.status, error: ctx.api.reason(a) };
          var info = a.body || {};
          if (!FINISHED[info.status]) {
            if (++tries > POLL_LIMIT) return { ok: false, status: a.status, error: "job " + info.jobID + " still " + info.status };
            return new Promise(function (r) { setTimeout(r, POLL_MS); }).then(poll);
          }
          if (info.status !== "successful") return { ok: false, status: a.status, error: "job " + info.status + (info.message ? ": " + info.message : "") };
          var link = (info.links || []).filter(function (l) { return /results$/.test(l.rel || ""); })[0];
          return ctx.api.get(link ? link.href : location.replace(/\/?(\?.*)?$/, "") + "/results").then(function (r) {
            return r.ok ? { ok: true, status: r.status, outputs: outputsOf(r.body, description) } : { ok: false, status: r.status, error: ctx.api.reason(r) };
          });
        });
      }
      return poll();
    }

    function execute(id, inputs) {
      return describe(id).then(function (description) {
        var sync = (description.jobControlOptions || ["sync-execute"]).indexOf("sync-execute") >= 0;
        var url = config.processes + "/" + encodeURIComponent(id) + "/execution";
        return ctx.api.post(url, { inputs: inputs }, sync ? {} : { Prefer: "respond-async" }).then(function (a) {
          if (!a.ok) return { ok: false, status: a.status, error: ctx.api.reason(a) };
          var location = a.headers.get("Location");
          var job = a.status === 201 || !!(a.body && a.body.jobID && a.body.type === "process" && a.body.status);
          if (job) {
            if (!location && a.body && a.body.jobID) location = config.processes.replace(/\/processes$/, "/jobs/") + a.body.jobID;
            return follow(location, description);
          }
          return { ok: true, status: a.status, outputs: outputsOf(a.body, description) };
        });
      }).catch(function (e) { return { ok: false, status: 0, error: String(e && e.message ? e.message : e) }; });
    }
    ctx.execute = execute;

    function showOutputs(container, outputs, append) {
      var drawn = 0;
      Object.keys(outputs).forEach(function (key) {
        var value = outputs[key];
        var h = document.createElement("h3");
        container.append(h);
        if (isFeatures(value)) {
          var fc = asCollection(value);
          drawn = ctx.results.show(fc, append || drawn > 0);
          h.textContent = key + ": " + fc.features.length + " feature" + (fc.features.length === 1 ? "" : "s");
          return;
        }
        h.textContent = key;
        if (value && typeof value === "object" && !Array.isArray(value)) container.append(ctx.table(value));
        else if (Array.isArray(value) && value.every(function (v) { return v && typeof v === "object"; })) {
          value.slice(0, 50).forEach(function (row) { container.append(ctx.table(row)); });
        } else {
          var pre = document.createElement("pre");
          pre.textContent = JSON.stringify(value, null, 1);
          container.append(pre);
        }
      });
      return drawn;
    }
    ctx.showOutputs = showOutputs;

    function control(id, spec) {  // one labelled input: {element, read() -> value | undefined}
      var schema = spec.schema || {};
      var wrap = document.createElement("label");
      wrap.className = "input";
      var title = document.createElement("span");
      title.textContent = (spec.title || id) + ((spec.minOccurs === undefined || spec.minOccurs > 0) ? " *" : "");
      wrap.title = spec.description || "";
      wrap.append(title);
      var kind = geometryKind(schema), type = baseType(schema), el, read;
      if (kind) {
        el = document.createElement("textarea");
        el.rows = 2;
        el.placeholder = "GeoJSON " + (kind === "point" ? "Point" : kind === "area" ? "Polygon" : "geometry");
        var buttons = document.createElement("span");
        buttons.className = "draw-buttons";
        var tools = kind === "point" ? [["point", "Pick on map"]] : kind === "area"
          ? [["rectangle", "Rectangle"], ["polygon", "Polygon"], ["view", "View"]]
          : [["point", "Point"], ["line", "Line"], ["polygon", "Polygon"]];
        tools.forEach(function (t) {
          var b = document.createElement("button");
          b.type = "button";
          b.textContent = t[1];
          b.dataset.draw = t[0];
          b.addEventListener("click", function () {
            if (t[0] === "view") { el.value = JSON.stringify(ctx.draw.view()); return; }
            ctx.draw.start(t[0], function (g) { el.value = JSON.stringify(g); });
          });
          buttons.append(b);
        });
        wrap.append(el, buttons);
        read = function () {
          if (!el.value.trim()) return undefined;
          try { return JSON.parse(el.value); } catch (e) { throw new Error(id + ": not JSON"); }
        };
      } else if (schema.enum) {
        el = document.createElement("select");
        [""].concat(schema.enum).forEach(function (v) {
          var o = document.createElement("option");
          o.value = v === "" ? "" : JSON.stringify(v);
          o.textContent = v === "" ? (schema.default !== undefined ? "(default " + schema.default + ")" : "—") : String(v);
          el.append(o);
        });
        wrap.append(el);
        read = function () { return el.value ? JSON.parse(el.value) : undefined; };
      } else if (type === "integer" || type === "number") {
        el = document.createElement("input");
        el.type = "number";
        el.step = type === "integer" ? "1" : "any";
        if (schema.minimum !== undefined) el.min = schema.minimum;
        if (schema.maximum !== undefined) el.max = schema.maximum;
        if (schema.default !== undefined) el.placeholder = String(schema.default);
        wrap.append(el);
        read = function () { return el.value === "" ? undefined : Number(el.value); };
      } else if (type === "boolean") {
        el = document.createElement("input");
        el.type = "checkbox";
        el.checked = schema.default === true;
        wrap.append(el);
        read = function () { return el.checked; };
      } else if (type === "string") {
        el = document.createElement("input");
        el.type = "text";
        if (schema.default !== undefined) el.placeholder = String(schema.default);
        wrap.append(el);
        read = function () { return el.value === "" ? undefined : el.value; };
      } else {
        el = document.createElement("textarea");
        el.rows = 2;
        el.placeholder = "JSON";
        wrap.append(el);
        read = function () {
          if (!el.value.trim()) return undefined;
          try { return JSON.parse(el.value); } catch (e) { throw new Error(id + ": not JSON"); }
        };
      }
      el.name = id;
      return { element: wrap, read: read };
    }

    function build(description) {
      form.textContent = "";
      resultEl.textContent = "";
      var p = document.createElement("p");
      p.className = "description";
      p.textContent = description.description || "";
      form.append(p);
      var controls = {};
      Object.keys(description.inputs || {}).forEach(function (id) {
        controls[id] = control(id, description.inputs[id]);
        form.append(controls[id].element);
      });
      var run = document.createElement("button");
      run.type = "submit";
      run.textContent = "Run";
      form.append(run);
      form.onsubmit = function (e) {
        e.preventDefault();
        var inputs = {};
        try {
          Object.keys(controls).forEach(function (id) {
            var v = controls[id].read();
            if (v !== undefined) inputs[id] = v;
          });
        } catch (err) {
          ctx.message(resultEl, String(err.message), true);
          return;
        }
        var last = state.last = { id: description.id, state: "running", status: null, features: 0, outputs: [], error: null };
        ctx.message(resultEl, "running…", false);
        ctx.writeStatus();
        run.disabled = true;
        execute(description.id, inputs).then(function (r) {
          run.disabled = false;
          last.status = r.status;
          resultEl.textContent = "";
          if (!r.ok) {
            last.state = "failed";
            last.error = r.error;
            ctx.message(resultEl, r.error, true);
          } else {
            last.state = "successful";
            last.outputs = Object.keys(r.outputs);
            last.features = showOutputs(resultEl, r.outputs, false);
            last.kinds = {};
            Object.keys(r.outputs).forEach(function (k) {
              if (!isFeatures(r.outputs[k])) return;
              asCollection(r.outputs[k]).features.forEach(function (f) {
                var p = f.properties || {}, kind = p.kind || p.change;
                if (kind) last.kinds[kind] = (last.kinds[kind] || 0) + 1;
              });
            });
          }
          ctx.writeStatus();
        });
      };
    }

    function choose(id) {
      state.selected = id || null;
      form.textContent = "";
      resultEl.textContent = "";
      ctx.writeStatus();
      if (!id) return;
      describe(id).then(build).catch(function (e) { ctx.message(resultEl, String(e.message || e), true); });
    }

    ctx.api.get(config.processes + "?f=json").then(function (a) {
      if (a.status === 404) {
        state.state = "absent";
        ctx.message(resultEl, "This server offers no processes.", false);
        ctx.writeStatus();
        return;
      }
      if (!a.ok) throw new Error(ctx.api.reason(a));
      var list = (a.body && a.body.processes) || [];
      var none = document.createElement("option");
      none.value = "";
      none.textContent = "— choose a process —";
      select.append(none);
      list.forEach(function (p) {
        var o = document.createElement("option");
        o.value = p.id;
        o.textContent = p.title ? p.title + " (" + p.id + ")" : p.id;
        select.append(o);
      });
      select.addEventListener("change", function () { choose(select.value); });
      state.state = "ready";
      state.count = list.length;
      state.ids = list.map(function (p) { return p.id; });
      ctx.writeStatus();
    }).catch(function (e) {
      state.state = "error";
      ctx.message(resultEl, "processes: " + String(e.message || e), true);
      ctx.writeStatus();
    });
  });
})();
