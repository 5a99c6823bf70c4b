//! The all-users stream's event ids: a position in every event shard.
//!
//! A per-user stream reads one shard, and its ids stay the shard's entry
//! ids (`<ms>-<seq>`). The all-users stream reads every shard, so its id
//! says how far it got in each: base64url (no padding) of a version byte
//! (`1`), the shard count `S` (varint), the largest millisecond `base`
//! among the known positions (varint), then per shard a varint that is `0`
//! for "not known" (the stream started while Redis could not say), `1` for
//! `0-0` (before every event: the shard was empty), or `base - ms + 2`
//! followed by the varint `seq`. Positions of
//! one moment are close in time, so with 8 shards an id is about 40
//! characters. Depends on nothing but the event id type.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use txwatch_cache::EventId;

/// The version byte of the format above.
const VERSION: u8 = 1;

/// Encodes one position per shard (index = shard).
pub(crate) fn encode(positions: &[Option<EventId>]) -> String {
    let base = positions
        .iter()
        .flatten()
        .map(|id| id.ms)
        .max()
        .unwrap_or(0);
    let mut bytes = Vec::with_capacity(4 + positions.len() * 4);
    bytes.push(VERSION);
    varint(&mut bytes, positions.len() as u64);
    varint(&mut bytes, base);
    for position in positions {
        match position {
            None => varint(&mut bytes, 0),
            Some(EventId::ZERO) => varint(&mut bytes, 1),
            Some(id) => {
                // Redis stamps ids with its clock: never near `u64::MAX`.
                varint(&mut bytes, (base - id.ms).saturating_add(2));
                varint(&mut bytes, id.seq);
            }
        }
    }
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The positions of an id [`encode`] wrote, one per shard; `None` when the
/// text is not such an id.
pub(crate) fn decode(text: &str) -> Option<Vec<Option<EventId>>> {
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    let mut rest = bytes.as_slice();
    let (&version, tail) = rest.split_first()?;
    rest = tail;
    if version != VERSION {
        return None;
    }
    let shards = usize::try_from(read_varint(&mut rest)?).ok()?;
    if shards == 0 || shards > 1024 {
        return None;
    }
    let base = read_varint(&mut rest)?;
    let mut positions = Vec::with_capacity(shards);
    for _ in 0..shards {
        let delta = read_varint(&mut rest)?;
        match delta {
            0 => {
                positions.push(None);
                continue;
            }
            1 => {
                positions.push(Some(EventId::ZERO));
                continue;
            }
            _ => {}
        }
        let ms = base.checked_sub(delta - 2)?;
        let seq = read_varint(&mut rest)?;
        positions.push(Some(EventId { ms, seq }));
    }
    rest.is_empty().then_some(positions)
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        // Low seven bits, then the continuation bit.
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            // The last byte of a u64 carries at most one bit.
            return (shift < 63 || byte <= 1).then_some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ms: u64, seq: u64) -> Option<EventId> {
        Some(EventId { ms, seq })
    }

    #[test]
    fn positions_round_trip_and_stay_short() {
        let positions = vec![
            id(1_765_000_000_123, 0),
            id(1_765_000_000_456, 3),
            None,
            id(0, 0),
            id(1_765_000_000_001, 17),
            id(1_765_000_000_400, 0),
            id(1_765_000_000_455, 1),
            id(1_765_000_000_000, u64::MAX),
        ];
        let text = encode(&positions);
        assert_eq!(decode(&text), Some(positions));
        let typical: Vec<_> = (0..8).map(|n| id(1_765_000_000_000 + n * 37, n)).collect();
        let text = encode(&typical);
        assert!(text.len() <= 40, "{text} is {} characters", text.len());
        assert_eq!(decode(&text), Some(typical));
        assert!(text.starts_with('A'), "{text}");
    }

    #[test]
    fn text_that_is_not_a_position_id_is_refused() {
        for text in [
            "",
            "1725969600123-7",
            "!!!",
            "AQ",
            &URL_SAFE_NO_PAD.encode([2, 1, 0, 0]),
            &URL_SAFE_NO_PAD.encode([1, 0, 0]),
            &URL_SAFE_NO_PAD.encode([1, 1, 5, 2, 0, 9]),
            &URL_SAFE_NO_PAD.encode([1, 1, 5, 9, 0]),
        ] {
            assert_eq!(decode(text), None, "{text:?}");
        }
    }
}
