"""SQL for the Order Service's tables, and nothing else: statements, never a commit."""
