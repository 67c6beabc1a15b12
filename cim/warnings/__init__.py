"""Public event warnings (公共事件预警): parsing CAP 1.2 (GB/T 35965.1 profile) and GeoJSON warnings,
following CAP feeds. docs/warnings.md."""
