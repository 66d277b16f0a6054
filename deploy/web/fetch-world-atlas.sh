#!/bin/sh
# Refreshes the web UI's offline world map, src/Survey6.Server/Web/Assets/world-110m.json, from the
# npm package world-atlas (Natural Earth 1:110m countries as TopoJSON, ISC licence). The result is
# committed, so a build never needs the network; run this only to update it.
# Needs npm and node. Usage: deploy/web/fetch-world-atlas.sh [version]
set -eu
version="${1:-2.0.2}"
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../src/Survey6.Server/Web/Assets/world-110m.json"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "world-atlas@$version" >/dev/null)
tar -xzf "$work"/world-atlas-*.tgz -C "$work"
# Keep only what the map draws: the arcs, the transform and each country's arcs and name.
node - "$work/package/countries-110m.json" "$out" <<'JS'
const fs = require("fs");
const [src, dst] = process.argv.slice(2);
const t = JSON.parse(fs.readFileSync(src, "utf8"));
const countries = t.objects.countries.geometries
  .filter(g => g.type === "Polygon" || g.type === "MultiPolygon")
  .map(g => ({ type: g.type, arcs: g.arcs, properties: { name: (g.properties && g.properties.name) || "" } }));
const slim = { type: "Topology", transform: t.transform, arcs: t.arcs,
  objects: { countries: { type: "GeometryCollection", geometries: countries } } };
fs.writeFileSync(dst, JSON.stringify(slim));
JS
cp "$work/package/LICENSE" "$here/world-atlas.LICENSE"
echo "wrote $out ($(wc -c < "$out") bytes) from world-atlas@$version"
