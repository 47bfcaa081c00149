//! aws-lc-rs provider (placeholder until implemented).
