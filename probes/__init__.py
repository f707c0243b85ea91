"""Future-token probes (issue: `interp probe`). Not implemented yet; the package reserves the name."""
