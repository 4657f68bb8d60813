//! The gate over load-test results and the snapshot tests of their schema (not built yet).
