//! Tests of retention runs.
