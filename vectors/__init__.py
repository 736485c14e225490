"""Package data: the built-in test vectors and suites, installed as ``harness._builtin.vectors``."""
