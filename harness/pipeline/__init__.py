"""Running suites: vectors, stages, suites, the runner and its executors, baselines and the stage cache."""
