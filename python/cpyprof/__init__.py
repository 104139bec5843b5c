"""cpyprof (placeholder until the package lands)."""
