// The parcel inspector (/viewer): with "Parcel inspector" pressed, a click on the map runs
// parcel-at-point (POST /processes/parcel-at-point/execution, {"inputs": {"point": {"type": "Point",
// "coordinates": [lon, lat]}}}) and shows the parcel with its zoning and district; then
// zoning-compliance over the parcel's polygon ({"inputs": {"area": <parcel geometry>}}) and lists its
// violations (height / far / use, value against limit). The parcel and the violations are drawn in
// the result layer. zoning-compliance may need a token (role analyst): the token field's value is sent.
// Process ids come from config.inspector ({parcel, compliance}).
// Status: "planner.inspector": {"state": "off" | "ready" | "looking" | "checking" | "done" | "none" |
//   "error", "parcel": the parcel's properties, "violations": n, "kinds": {kind: n}, "error"}.
(function () {
  "use strict";

  function collections(outputs) {  // the outputs' features, in output order
    var features = [];
    Object.keys(outputs || {}).forEach(function (k) {
      var v = outputs[k];
      if (v && v.type === "FeatureCollection") features = features.concat(v.features || []);
      else if (v && v.type === "Feature") features.push(v);
    });
    return features;
  }

  function summaries(outputs) {
    var out = {};
    Object.keys(outputs || {}).forEach(function (k) {
      var v = outputs[k];
      if (v && typeof v === "object" && !Array.isArray(v) && v.type !== "FeatureCollection" && v.type !== "Feature") out[k] = v;
    });
    return out;
  }

  window.cimPlanner.register(function (ctx) {
    var button = document.getElementById("inspect"), panel = document.getElementById("inspector-result");
    var ids = ctx.config.inspector || {};
    var state = ctx.status.planner.inspector = { state: "off" };
    if (!button || !panel) return;
    var on = false;

    function heading(text) {
      var h = document.createElement("h3");
      h.textContent = text;
      panel.append(h);
    }

    function inspect(e) {
      if (!ctx.execute) { ctx.message(panel, "no processes on this server", true); return; }
      var point = { type: "Point", coordinates: [Math.round(e.lngLat.lng * 1e7) / 1e7, Math.round(e.lngLat.lat * 1e7) / 1e7] };
      state = ctx.status.planner.inspector = { state: "looking", point: point.coordinates };
      ctx.writeStatus();
      ctx.message(panel, "looking up the parcel…", false);
      ctx.execute(ids.parcel, { point: point }).then(function (r) {
        panel.textContent = "";
        if (!r.ok) throw new Error(r.error);
        var parcels = collections(r.outputs);
        if (!parcels.length) {
          state.state = "none";
          ctx.results.clear();
          ctx.message(panel, "No parcel here.", false);
          ctx.writeStatus();
          return null;
        }
        var parcel = parcels[0];
        state.parcel = parcel.properties || {};
        heading("Parcel " + (state.parcel.parcel_id || "#" + parcel.id));
        panel.append(ctx.table(parcel.properties));
        var extra = summaries(r.outputs);
        Object.keys(extra).forEach(function (k) { heading(k); panel.append(ctx.table(extra[k])); });
        var outline = { type: "Feature", id: parcel.id, geometry: parcel.geometry,
          properties: Object.assign({}, parcel.properties, { kind: "parcel" }) };
        ctx.results.show({ type: "FeatureCollection", features: [outline] });
        state.state = "checking";
        ctx.writeStatus();
        return ctx.execute(ids.compliance, { area: parcel.geometry }).then(function (c) {
          if (!c.ok) throw new Error("compliance: " + c.error);
          var violations = collections(c.outputs);
          var kinds = {};
          violations.forEach(function (v) { var k = (v.properties || {}).kind || "other"; kinds[k] = (kinds[k] || 0) + 1; });
          heading(violations.length ? "Compliance: " + violations.length + " violation" + (violations.length === 1 ? "" : "s") : "Compliance: no violation");
          violations.forEach(function (v) { panel.append(ctx.table(v.properties)); });
          var summary = summaries(c.outputs);
          Object.keys(summary).forEach(function (k) { heading(k); panel.append(ctx.table(summary[k])); });
          ctx.results.show({ type: "FeatureCollection", features: violations }, true);
          state.state = "done";
          state.violations = violations.length;
          state.kinds = kinds;
          ctx.writeStatus();
        });
      }).catch(function (err) {
        state.state = "error";
        state.error = String(err && err.message ? err.message : err);
        var p = document.createElement("p");
        p.className = "error";
        p.textContent = state.error;
        panel.append(p);
        ctx.writeStatus();
      });
    }

    function set(value) {
      on = value;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      if (on) {
        if (ctx.draw) ctx.draw.stop();
        ctx.claim(inspect);
        state.state = "ready";
        ctx.message(panel, "Click a parcel.", false);
      } else {
        ctx.release(inspect);
        state.state = "off";
      }
      ctx.writeStatus();
    }
    button.addEventListener("click", function () { set(!on || ctx.claimed !== inspect); });
    ctx.inspector = { set: set };
  });
})();
