// The map viewer of the CIM base map (/viewer): MapLibre GL JS on /styles/basemap.
// Status for people and tests: <pre id="status"> holds JSON, rewritten at every "idle" of the map:
//   {"state": "loading" | "idle" | "error", "errors": [...], "zoom", "center",
//    "sourceLayers": {name: rendered features}, "layers": {style layer id: rendered features},
//    "sources": {id: loaded?}, "webgl": "webgl2" | "webgl" | null,
//    "warnings": the live warnings overlay (ogcapi/static/warnings.js)}
// The live warnings' rendered features count under sourceLayers.warnings, like the tiles' would.
// Once the style has loaded, the planner's tools start (planner.js and the modules registering with it:
// search.js, draw.js, processes_panel.js, inspector.js); their state is under "planner".
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("cim-viewer-config").textContent);
  var statusEl = document.getElementById("status");
  var status = { state: "loading", errors: [], webgl: webglSupport() };

  function webglSupport() {
    try {
      var canvas = document.createElement("canvas");
      if (canvas.getContext("webgl2")) return "webgl2";
      if (canvas.getContext("webgl")) return "webgl";
    } catch (e) { /* reported as null */ }
    return null;
  }

  function writeStatus() {
    statusEl.textContent = JSON.stringify(status, null, 1);
    statusEl.setAttribute("data-state", status.state);
  }

  function addError(message) {
    if (status.errors.length < 50) status.errors.push(String(message));
    writeStatus();
  }

  window.addEventListener("error", function (e) { addError("page: " + (e.message || e.type)); });
  window.addEventListener("unhandledrejection", function (e) {
    addError("page: " + (e.reason && e.reason.message ? e.reason.message : String(e.reason)));
  });

  if (!window.maplibregl) {
    status.state = "error";
    addError("MapLibre GL JS did not load from " + config.maplibre);
    return;
  }

  var map;
  try {
    map = new maplibregl.Map({
      container: "map",
      style: config.style,
      hash: true, // #zoom/lat/lon: deep links (the style's center and zoom otherwise)
      attributionControl: { compact: true },
    });
  } catch (e) {
    status.state = "error";
    addError("map: " + (e && e.message ? e.message : e));
    return;
  }
  window.cimViewer = { map: map, status: status };
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");

  map.on("error", function (e) {
    var err = e && e.error ? e.error : e;
    var message = err && err.message ? err.message : String(err);
    if (e && e.sourceId) message = e.sourceId + ": " + message;
    if (err && err.url) message += " (" + err.url + ")";
    addError("map: " + message);
  });

  var LIVE_SOURCES = { "warnings-live": "warnings", "warnings-live-labels": "warnings" };
  var warnings = null;

  map.on("idle", function () {
    var byLayer = {}, bySourceLayer = {}, sources = {};
    map.queryRenderedFeatures().forEach(function (f) {
      var id = f.layer && f.layer.id;
      var sl = f.sourceLayer || LIVE_SOURCES[f.source] || f.source;
      byLayer[id] = (byLayer[id] || 0) + 1;
      bySourceLayer[sl] = (bySourceLayer[sl] || 0) + 1;
    });
    Object.keys(map.getStyle().sources).forEach(function (id) {
      if (!LIVE_SOURCES[id] && id.indexOf("cim-") !== 0) sources[id] = map.isSourceLoaded(id); // the style's own ("cim-*": the planner's)
    });
    var c = map.getCenter();
    status.state = "idle";
    status.zoom = Math.round(map.getZoom() * 100) / 100;
    status.center = [Math.round(c.lng * 1e5) / 1e5, Math.round(c.lat * 1e5) / 1e5];
    status.sourceLayers = bySourceLayer;
    status.layers = byLayer;
    status.sources = sources;
    writeStatus();
  });

  map.once("load", function () {
    try {
      warnings = window.cimWarnings ? window.cimWarnings(map, config, status, writeStatus, addError) : null;
    } catch (e) {
      addError("warnings: " + (e && e.message ? e.message : e));
    }
    window.cimViewer.warnings = warnings;
    try {  // the planner's tools: feature details, search, 3D, processes, parcel inspector (planner.js)
      if (window.cimPlanner) {
        window.cimViewer.planner = window.cimPlanner.start({ map: map, config: config, status: status, writeStatus: writeStatus, addError: addError });
      }
    } catch (e) {
      addError("planner: " + (e && e.message ? e.message : e));
    }
    buildLegend();
  });

  function swatchColor(layer) {
    var prop = { fill: "fill-color", line: "line-color", circle: "circle-color" }[layer.type];
    var value = prop ? map.getPaintProperty(layer.id, prop) : null;
    if (typeof value === "string") return value;
    return layer.type === "hillshade" ? "#a0a0a0" : layer.type === "raster" ? "#6b8e6b" : "#cccccc";
  }

  function buildLegend() {
    var list = document.getElementById("legend");
    var warningsMeta = null;
    map.getStyle().layers.forEach(function (layer) {
      var meta = layer.metadata || {};
      if (!meta["cim:title"] || meta["cim:planner"]) return; // the planner's own layers (3D, results): not in the legend
      if (meta["cim:warnings"]) {  // one entry for the warnings, after the others
        if (!meta["cim:part"] && !meta["cim:live"]) warningsMeta = meta;
        if (warnings) return;
        if (meta["cim:part"]) return;
      }
      var item = document.createElement("li");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.checked = (layer.layout || {}).visibility !== "none";
      box.title = "show / hide";
      box.addEventListener("change", function () {
        var id = layer.id, planner = status.planner || {};
        if (planner.view === "3d" && map.getLayer(id + "-3d")) id += "-3d"; // buildings in 3D: the extruded layer
        map.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none");
      });
      var swatch = document.createElement("span");
      swatch.className = "swatch " + layer.type;
      swatch.style.background = swatchColor(layer);
      var label = document.createElement("span");
      label.textContent = meta["cim:title"];
      var range = document.createElement("span");
      range.className = "range";
      range.textContent = layer.minzoom ? "z" + layer.minzoom + "+" : "";
      item.append(box, swatch, label, range);
      list.append(item);
    });
    if (warnings && warningsMeta) window.cimWarnings.legend(list, warnings, warningsMeta["cim:legend"], warningsMeta["cim:title"]);
  }

  // click to inspect: the features under the pointer (a few pixels around it), topmost first
  map.on("click", function (e) {
    if (window.cimPlanner && window.cimPlanner.takeClick(e)) return; // a drawing tool or the parcel inspector
    var p = e.point, r = 4;
    var features = map.queryRenderedFeatures([[p.x - r, p.y - r], [p.x + r, p.y + r]]);
    if (!features.length) return;
    var popup = new maplibregl.Popup({ maxWidth: "320px" }).setLngLat(e.lngLat);
    var top = features[0], meta = top.layer.metadata || {};
    if (meta["cim:warnings"] && window.cimWarnings) {  // a warning: what it says, not every field
      popup.setDOMContent(window.cimWarnings.popup(top, meta["cim:title"])).addTo(map);
      return;
    }
    var root = document.createElement("div");
    root.className = "cim-popup";
    features.slice(0, 3).forEach(function (f, i) {
      var title = document.createElement("h2");
      title.textContent = ((f.layer.metadata || {})["cim:title"] || f.layer.id) + (f.id !== undefined ? " #" + f.id : "");
      var table = document.createElement("table");
      Object.keys(f.properties).sort().forEach(function (key) {
        var row = table.insertRow();
        var th = document.createElement("th");
        th.textContent = key;
        row.append(th);
        row.insertCell().textContent = String(f.properties[key]);
      });
      root.append(title, table);
      // the topmost feature in full, from /collections/{layer}/items/{id} (planner.js)
      if (i === 0 && window.cimPlanner) window.cimPlanner.complete(f, table);
    });
    popup.setDOMContent(root).addTo(map);
  });
  writeStatus();
})();
