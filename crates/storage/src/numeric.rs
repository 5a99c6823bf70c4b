//! Reading `NUMERIC` amounts straight into whole cents.
//!
//! Amounts are stored as `NUMERIC(20,2)`. rust_decimal's `FromSql` builds a
//! 96-bit decimal with a division per base-10000 digit and then rescales
//! it, which was a tenth of the server's instructions for a page of
//! history; an amount only needs its whole number of cents, which the binary
//! form gives with multiplications and additions. Values with more than
//! two decimals, `NaN` and infinities are refused (they are not amounts).

use std::error::Error;

use tokio_postgres::types::{FromSql, Type};

/// A `NUMERIC` value as a whole number of hundredths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cents(pub(crate) i128);

/// The binary `NUMERIC` header: digit count, weight, sign, display scale.
const HEADER: usize = 8;
const POSITIVE: u16 = 0x0000;
const NEGATIVE: u16 = 0x4000;

impl<'a> FromSql<'a> for Cents {
    /// The binary form is `ndigits: i16, weight: i16, sign: u16, dscale:
    /// u16`, then `ndigits` base-10000 digits, most significant first; the
    /// value is the sum of `digit[i] * 10000^(weight - i)`.
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Cents, Box<dyn Error + Sync + Send>> {
        let field = |at: usize| u16::from_be_bytes([raw[at], raw[at + 1]]);
        if raw.len() < HEADER {
            return Err("a NUMERIC value shorter than its header".into());
        }
        let count = usize::from(field(0));
        let weight = i32::from(field(2) as i16);
        let negative = match field(4) {
            POSITIVE => false,
            NEGATIVE => true,
            _ => return Err("NaN or an infinity is not an amount".into()),
        };
        if raw.len() != HEADER + 2 * count {
            return Err("a NUMERIC value whose length does not match its digit count".into());
        }
        let mut cents: i128 = 0;
        for i in 0..count {
            let digit = field(HEADER + 2 * i);
            if digit >= 10_000 {
                return Err("a NUMERIC digit beyond base 10000".into());
            }
            let digit = i128::from(digit);
            // This digit's place, in cents: 10000^(weight - i) * 100.
            let place = weight - i as i32;
            let value = match place {
                p if p >= 0 => u32::try_from(4 * p + 2)
                    .ok()
                    .and_then(|exponent| 10_i128.checked_pow(exponent))
                    .and_then(|scale| digit.checked_mul(scale)),
                -1 if digit % 100 == 0 => Some(digit / 100),
                _ if digit == 0 => Some(0),
                _ => return Err("an amount with more than two decimals".into()),
            };
            cents = value
                .and_then(|value| cents.checked_add(value))
                .ok_or("a NUMERIC value too large for an amount")?;
        }
        Ok(Cents(if negative { -cents } else { cents }))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal::Decimal;
    use tokio_postgres::types::ToSql;
    use tokio_postgres::types::private::BytesMut;

    use super::*;

    /// The binary form rust_decimal writes for `value`.
    fn binary(value: Decimal) -> BytesMut {
        let mut out = BytesMut::new();
        value
            .to_sql(&Type::NUMERIC, &mut out)
            .expect("a decimal encodes");
        out
    }

    fn cents_of(raw: &[u8]) -> Result<i128, String> {
        Cents::from_sql(&Type::NUMERIC, raw)
            .map(|Cents(c)| c)
            .map_err(|e| e.to_string())
    }

    proptest! {
        #[test]
        fn reads_what_rust_decimal_writes(cents in -99_999_999_999_999_999_999_i128..=99_999_999_999_999_999_999) {
            let value = Decimal::from_i128_with_scale(cents, 2);
            prop_assert_eq!(cents_of(&binary(value)), Ok(cents));
        }

        #[test]
        fn reads_values_written_at_other_scales(cents in -1_000_000_000_i128..1_000_000_000, scale in 0_u32..6) {
            // The same value with trailing zeros (e.g. 12.3400) reads the same.
            let value = Decimal::from_i128_with_scale(cents * 10_i128.pow(scale), 2 + scale);
            prop_assert_eq!(cents_of(&binary(value)), Ok(cents));
        }
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        let too_precise = Decimal::from_i128_with_scale(12_345, 3); // 12.345
        assert!(cents_of(&binary(too_precise)).is_err());
        let tiny = Decimal::from_i128_with_scale(1, 6); // 0.000001
        assert!(cents_of(&binary(tiny)).is_err());
        // NaN: no digits, sign 0xC000.
        assert!(cents_of(&[0, 0, 0, 0, 0xC0, 0, 0, 0]).is_err());
        // A digit count that the bytes do not hold, and a short header.
        assert!(cents_of(&[0, 2, 0, 0, 0, 0, 0, 2, 0, 1]).is_err());
        assert!(cents_of(&[0, 0, 0]).is_err());
        // A digit beyond base 10000.
        assert!(cents_of(&[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]).is_err());
        // Far too large: 1 * 10000^40.
        assert!(cents_of(&[0, 1, 0, 40, 0, 0, 0, 0, 0, 1]).is_err());
    }

    #[test]
    fn reads_zero_and_small_values() {
        assert_eq!(cents_of(&binary(Decimal::ZERO)), Ok(0));
        assert_eq!(
            cents_of(&binary(Decimal::from_i128_with_scale(5, 2))),
            Ok(5)
        );
        assert_eq!(
            cents_of(&binary(Decimal::from_i128_with_scale(-1234, 2))),
            Ok(-1234)
        );
    }
}
