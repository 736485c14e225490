"""What a suite declares: suites (TOML → Suite, Case), the vectors they run, their baselines."""
