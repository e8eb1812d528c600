"""The Python runner (runs inside the sandbox)."""
