"""Runners that execute inside the sandbox: stdlib only, nothing of ours imported."""
