//! A fixed-capacity ring of recent values.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The last `capacity` values, oldest first. Serializes as
/// `{"capacity": n, "values": [oldest, ..., newest]}`. Two rings are equal
/// when they hold the same values in the same order, wherever they start.
#[derive(Debug, Clone)]
pub(crate) struct Ring {
    capacity: usize,
    values: Vec<f64>,
    /// Index of the oldest value once full.
    start: usize,
}

impl Ring {
    pub(crate) fn new(capacity: usize) -> Ring {
        Ring {
            capacity: capacity.max(1),
            values: Vec::with_capacity(capacity.max(1)),
            start: 0,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }

    /// Appends `value`; returns the value it pushed out, once full.
    pub(crate) fn push(&mut self, value: f64) -> Option<f64> {
        if self.values.len() < self.capacity {
            self.values.push(value);
            return None;
        }
        let evicted = std::mem::replace(&mut self.values[self.start], value);
        self.start += 1;
        if self.start == self.capacity {
            self.start = 0;
        }
        Some(evicted)
    }

    /// The values in two slices, oldest first: iterating them is faster
    /// than [`iter`](Ring::iter)'s chain where it matters.
    pub(crate) fn as_slices(&self) -> (&[f64], &[f64]) {
        let (newer, older) = self.values.split_at(self.start);
        (older, newer)
    }

    /// Oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let (newer, older) = self.values.split_at(self.start);
        older.iter().chain(newer).copied()
    }
}

impl PartialEq for Ring {
    fn eq(&self, other: &Ring) -> bool {
        self.capacity == other.capacity
            && self.values.len() == other.values.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|(a, b)| a.to_bits() == b.to_bits())
    }
}

#[derive(Serialize, Deserialize)]
struct RingRepr {
    capacity: usize,
    values: Vec<f64>,
}

impl Serialize for Ring {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RingRepr {
            capacity: self.capacity,
            values: self.iter().collect(),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Ring {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ring, D::Error> {
        let repr = RingRepr::deserialize(deserializer)?;
        if repr.capacity == 0 || repr.values.len() > repr.capacity {
            return Err(serde::de::Error::custom(
                "a ring holds 1 to `capacity` values",
            ));
        }
        let mut ring = Ring::new(repr.capacity);
        for value in repr.values {
            ring.push(value);
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_ring_evicts_its_oldest_value() {
        let mut ring = Ring::new(3);
        let evicted: Vec<_> = (1..=5).map(|v| ring.push(f64::from(v))).collect();
        assert_eq!(evicted, [None, None, None, Some(1.0), Some(2.0)]);
        assert_eq!(ring.iter().collect::<Vec<_>>(), [3.0, 4.0, 5.0]);
    }
}
