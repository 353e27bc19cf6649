//! Integration tests live in `integration/`; this crate holds no code of its own.
