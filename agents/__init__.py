"""The perceive-remember-act agent loop and the language modules (built by later issues)."""
