"""Package data: the built-in suites' baselines, installed as ``harness._builtin.baselines``."""
