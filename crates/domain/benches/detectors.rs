//! Detector update throughput (placeholder until written).

fn main() {}
