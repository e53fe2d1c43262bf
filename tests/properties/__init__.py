"""Property-based tests (hypothesis): bad input gets one clear error and starts nothing."""
