"""How a run executes: runner, executors and worker processes, the run folder, the stage
cache and its identity, batching, rerun, case execution and judging."""
