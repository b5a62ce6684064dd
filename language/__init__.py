"""Thalamically routed continual-learning language modules (TRC2): model, tasks, continual harness."""
