// Drawing process inputs on the map (/viewer): ctx.draw.start(kind, done) takes the next map clicks —
//   "point": one click -> a GeoJSON Point;
//   "rectangle": two opposite corners -> a Polygon;
//   "polygon": a click per vertex, a double-click (or a click on the first vertex) closes -> a Polygon;
//   "line": a click per vertex, a double-click ends -> a LineString.
// ctx.draw.view() is the map's current view as a Polygon. What is being drawn shows in "cim-draw".
// Coordinates are CRS84 lon/lat, rounded to 1e-7 degrees (about 1 cm).
(function () {
  "use strict";
  var SOURCE = "cim-draw";
  var HINTS = {
    point: "Click the map to place the point.",
    rectangle: "Click two opposite corners.",
    polygon: "Click each corner; double-click (or click the first corner) to finish.",
    line: "Click each vertex; double-click to finish.",
  };

  function round(c) { return [Math.round(c[0] * 1e7) / 1e7, Math.round(c[1] * 1e7) / 1e7]; }

  function rectangle(a, b) {
    var w = Math.min(a[0], b[0]), e = Math.max(a[0], b[0]), s = Math.min(a[1], b[1]), n = Math.max(a[1], b[1]);
    return { type: "Polygon", coordinates: [[[w, s], [e, s], [e, n], [w, n], [w, s]]] };
  }

  window.cimPlanner.register(function (ctx) {
    var map = ctx.map;
    var hint = document.getElementById("tool-hint");
    map.addSource(SOURCE, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
    map.addLayer({ id: SOURCE + "-line", type: "line", source: SOURCE, paint: { "line-color": "#1c7ed6", "line-width": 2, "line-dasharray": [2, 1] } });
    map.addLayer({ id: SOURCE + "-vertex", type: "circle", source: SOURCE, filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-radius": 4, "circle-color": "#1c7ed6" } });
    var active = null;

    function sketch(points, closed) {
      var features = points.map(function (p) { return { type: "Feature", properties: {}, geometry: { type: "Point", coordinates: p } }; });
      if (points.length > 1) {
        var line = closed ? points.concat([points[0]]) : points;
        features.push({ type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: line } });
      }
      map.getSource(SOURCE).setData({ type: "FeatureCollection", features: features });
    }

    function stop() {
      if (!active) return;
      ctx.release(active.handler);
      map.off("dblclick", active.dblclick);
      map.doubleClickZoom.enable();
      active = null;
      if (hint) hint.textContent = "";
      ctx.status.planner.drawing = null;
      ctx.writeStatus();
    }

    function finish(geometry) {
      var done = active.done;
      stop();
      sketch([], false);
      done(geometry);
    }

    function start(kind, done) {
      stop();
      var points = [];
      var handler = function (e) {
        var p = round([e.lngLat.lng, e.lngLat.lat]);
        if (kind === "point") { finish({ type: "Point", coordinates: p }); return; }
        if (kind === "rectangle") {
          points.push(p);
          if (points.length === 2) { finish(rectangle(points[0], points[1])); return; }
        } else if (kind === "polygon" && points.length >= 3 && map.project(points[0]).dist(e.point) < 8) {
          finish({ type: "Polygon", coordinates: [points.concat([points[0]])] });
          return;
        } else {
          points.push(p);
        }
        sketch(points, kind === "polygon");
      };
      var dblclick = function (e) {
        if (e.preventDefault) e.preventDefault();
        // the double-click's two clicks have added the same vertex twice
        while (points.length > 1 && points[points.length - 1][0] === points[points.length - 2][0] && points[points.length - 1][1] === points[points.length - 2][1]) points.pop();
        if (kind === "polygon" && points.length >= 3) finish({ type: "Polygon", coordinates: [points.concat([points[0]])] });
        else if (kind === "line" && points.length >= 2) finish({ type: "LineString", coordinates: points });
      };
      active = { handler: handler, dblclick: dblclick, done: done };
      map.doubleClickZoom.disable();
      map.on("dblclick", dblclick);
      ctx.claim(handler);
      if (hint) hint.textContent = HINTS[kind] || "";
      ctx.status.planner.drawing = kind;
      ctx.writeStatus();
    }

    function view() {
      var b = map.getBounds();
      return rectangle(round([b.getWest(), b.getSouth()]), round([b.getEast(), b.getNorth()]));
    }

    ctx.draw = { start: start, stop: stop, view: view };
  });
})();
