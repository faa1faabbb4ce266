"""A run's states and the views' refresh pace: shared by the runner and its workers."""

QUEUED, RUNNING, PAUSED, STOPPED = "queued", "running", "paused", "stopped"
# Views (decision boundary, weights, ...) are refreshed at most this often while training:
# a board redraws its heatmap far slower than its curves, and a 100x100 grid through a
# 128-128 net costs ~15 ms, so refreshing them 4x a second per run was waste.
VIEW_INTERVAL = 1.0
