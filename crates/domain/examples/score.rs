//! Scores a CSV series (placeholder until written).

fn main() {}
