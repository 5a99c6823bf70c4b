//! Exact money amounts.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An exact amount of money with two decimal places, within the range of the
/// database column `NUMERIC(20,2)`: strictly between -10^18 and 10^18.
///
/// Amounts are never floating point: they are parsed from and printed as
/// decimal strings (`"271.62"`), and only the detector converts them to `f64`
/// for its statistics.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(Decimal);

/// Why a value is not a valid [`Amount`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The text is not a finite decimal number.
    #[error("`{0}` is not a decimal number")]
    NotANumber(String),
    /// More than two digits after the decimal point.
    #[error("`{0}` has more than two decimal places")]
    TooPrecise(String),
    /// Outside the range of `NUMERIC(20,2)`.
    #[error("`{0}` is out of range: amounts must be below 10^18 in magnitude")]
    OutOfRange(String),
}

impl Amount {
    /// Digits after the decimal point, as stored.
    pub const SCALE: u32 = 2;
    /// Zero.
    pub const ZERO: Amount = Amount(Decimal::ZERO);

    /// The largest amount `NUMERIC(20,2)` holds: 999999999999999999.99.
    pub fn max_value() -> Amount {
        Amount(Decimal::from_i128_with_scale(99_999_999_999_999_999_999, 2))
    }

    /// Wraps a decimal, checking scale and range.
    ///
    /// # Errors
    /// [`AmountError::TooPrecise`] when it has more than two significant
    /// decimal places, [`AmountError::OutOfRange`] beyond `NUMERIC(20,2)`.
    pub fn try_new(value: Decimal) -> Result<Amount, AmountError> {
        Self::checked(value, || value.to_string())
    }

    /// Checks scale and range, naming the input as `shown` in errors.
    fn checked(value: Decimal, shown: impl Fn() -> String) -> Result<Amount, AmountError> {
        let mut normalized = value.normalize();
        if normalized.scale() > Self::SCALE {
            return Err(AmountError::TooPrecise(shown()));
        }
        if normalized.abs() > Self::max_value().0 {
            return Err(AmountError::OutOfRange(shown()));
        }
        normalized.rescale(Self::SCALE);
        Ok(Amount(normalized))
    }

    /// An amount from a whole number of cents (hundredths).
    ///
    /// # Errors
    /// [`AmountError::OutOfRange`] beyond `NUMERIC(20,2)`.
    pub fn from_cents(cents: i128) -> Result<Amount, AmountError> {
        // Whole cents at scale 2 are already in the stored form: only the
        // range needs checking (this runs for every windowed amount).
        const MAX_CENTS: i128 = 99_999_999_999_999_999_999;
        if cents.unsigned_abs() > MAX_CENTS.unsigned_abs() {
            return Err(AmountError::OutOfRange(format!("{cents} cents")));
        }
        Ok(Amount(Decimal::from_i128_with_scale(cents, Self::SCALE)))
    }

    /// The exact decimal value, always with two decimal places.
    pub fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// The whole number of cents (hundredths): the amount is always stored
    /// at scale 2, so this is its decimal's mantissa.
    pub fn cents(&self) -> i128 {
        self.0.mantissa()
    }

    /// The value as a float, for statistics only (never for storage).
    ///
    /// This is the double nearest to the exact amount (what parsing its text
    /// as a float gives), computed cheaply: the scale is always 2, so it is
    /// the whole number of cents divided by 100, one correctly rounded
    /// division when the cents fit a double's 53-bit mantissa.
    pub fn to_f64(&self) -> f64 {
        const EXACT_IN_F64: u64 = 1 << 53;
        let cents = self.0.mantissa();
        match i64::try_from(cents) {
            Ok(small) if small.unsigned_abs() <= EXACT_IN_F64 => small as f64 / 100.0,
            _ => cents as f64 / 100.0,
        }
    }
}

impl FromStr for Amount {
    type Err = AmountError;

    /// Parses plain (`"12.5"`) or scientific (`"1.25e1"`) decimal notation.
    /// `NaN`, infinities and anything beyond `NUMERIC(20,2)` are rejected.
    fn from_str(text: &str) -> Result<Amount, AmountError> {
        let trimmed = text.trim();
        let not_a_number = || AmountError::NotANumber(text.to_owned());
        if trimmed.is_empty() {
            return Err(not_a_number());
        }
        let parsed = if trimmed.contains(['e', 'E']) {
            Decimal::from_scientific(trimmed)
        } else {
            Decimal::from_str_exact(trimmed)
        };
        match parsed {
            Ok(value) => Amount::checked(value, || text.to_owned()),
            // Well-formed digits that do not fit a 96-bit decimal are too
            // large or, below one cent, too precise; anything else is not a
            // number at all.
            Err(_) if looks_numeric(trimmed) => Err(if below_one_cent(trimmed) {
                AmountError::TooPrecise(text.to_owned())
            } else {
                AmountError::OutOfRange(text.to_owned())
            }),
            Err(_) => Err(not_a_number()),
        }
    }
}

/// Whether numeric text (see [`looks_numeric`]) is nonzero and below one
/// cent in magnitude, such as `1.4e-45` or `0.000...01`: too precise rather
/// than too large, when a decimal cannot hold it.
fn below_one_cent(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = digits.split_once(['e', 'E']).unwrap_or((digits, "0"));
    // An exponent too long for an i64 is far beyond either end.
    let exponent: i64 = exponent.parse().unwrap_or(if exponent.starts_with('-') {
        i64::MIN / 2
    } else {
        i64::MAX / 2
    });
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let whole = whole.trim_start_matches('0');
    // Where the first significant digit sits: 1 for the units, 0 for tenths,
    // -1 for hundredths, ...
    let leading = if whole.is_empty() {
        let significant = fraction.trim_start_matches('0');
        if significant.is_empty() {
            return false; // zero
        }
        -((fraction.len() - significant.len()) as i64)
    } else {
        whole.len() as i64
    };
    leading.saturating_add(exponent) < -1
}

fn looks_numeric(text: &str) -> bool {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match digits.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e.strip_prefix(['+', '-']).unwrap_or(e))),
        None => (digits, None),
    };
    let mantissa_ok = !mantissa.is_empty()
        && mantissa.chars().filter(|c| *c == '.').count() <= 1
        && mantissa.chars().any(|c| c.is_ascii_digit())
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.');
    let exponent_ok =
        exponent.is_none_or(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_digit()));
    mantissa_ok && exponent_ok
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl TryFrom<Decimal> for Amount {
    type Error = AmountError;
    fn try_from(value: Decimal) -> Result<Amount, AmountError> {
        Amount::try_new(value)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&str, fn(String) -> AmountError>) {
        let got = input.parse::<Amount>().map(|a| a.to_string());
        let want = expected
            .map(str::to_owned)
            .map_err(|make| make(input.to_owned()));
        assert_eq!(got, want, "parsing {input:?}");
    }

    #[test]
    fn amounts_parse_to_two_decimal_places_or_are_rejected_with_a_reason() {
        check("271.62", Ok("271.62"));
        check("5", Ok("5.00"));
        check("0.5", Ok("0.50"));
        check("-3.10", Ok("-3.10"));
        check("10.000", Ok("10.00"));
        check("1e3", Ok("1000.00"));
        check("1.5E2", Ok("150.00"));
        check(" 7 ", Ok("7.00"));
        check("999999999999999999.99", Ok("999999999999999999.99"));
        check("10000000000", Ok("10000000000.00"));
        check("1e18", Err(AmountError::OutOfRange));
        check("1000000000000000000", Err(AmountError::OutOfRange));
        check("1e400", Err(AmountError::OutOfRange));
        check(
            "123456789012345678901234567890",
            Err(AmountError::OutOfRange),
        );
        check("10.001", Err(AmountError::TooPrecise));
        // Beyond what a decimal holds, but tiny: too precise, not too large.
        check("1.401298464324817e-45", Err(AmountError::TooPrecise));
        check("-2.2250738585e-313", Err(AmountError::TooPrecise));
        check("1e-99999999999999999999", Err(AmountError::TooPrecise));
        check(
            "0.0000000000000000000000000000001",
            Err(AmountError::TooPrecise),
        );
        check("1e99999999999999999999", Err(AmountError::OutOfRange));
        check(
            "123456789012345678901234567890e-1",
            Err(AmountError::OutOfRange),
        );
        check("abc", Err(AmountError::NotANumber));
        check("NaN", Err(AmountError::NotANumber));
        check("inf", Err(AmountError::NotANumber));
        check("-Infinity", Err(AmountError::NotANumber));
        check("", Err(AmountError::NotANumber));
        check("1.2.3", Err(AmountError::NotANumber));
        check("0x10", Err(AmountError::NotANumber));
    }

    #[test]
    fn to_f64_is_the_double_nearest_the_exact_amount() {
        // A deterministic spread of cents over every magnitude up to 2^53.
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        for step in 0..20_000_u32 {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let bits = step % 54;
            let magnitude = (state >> 11) & ((1_u64 << bits) - 1).max(1);
            let cents = if step % 2 == 0 {
                magnitude as i128
            } else {
                -(magnitude as i128)
            };
            let amount = Amount::from_cents(cents).expect("in range");
            let parsed: f64 = amount.to_string().parse().expect("a float");
            assert_eq!(amount.to_f64(), parsed, "{amount}");
        }
        // Beyond 2^53 cents, within one part in 10^15.
        let huge = Amount::max_value();
        let parsed: f64 = huge.to_string().parse().expect("a float");
        assert!((huge.to_f64() - parsed).abs() <= parsed * 1e-15);
    }

    #[test]
    fn amounts_from_cents_keep_two_decimals() {
        assert_eq!(
            Amount::from_cents(27162).map(|a| a.to_string()),
            Ok("271.62".into())
        );
        assert!(Amount::from_cents(10_i128.pow(20)).is_err());
    }

    #[test]
    fn amounts_serialize_as_strings_and_parse_back() {
        let amount: Amount = "12.3".parse().expect("valid");
        let json = serde_json::to_string(&amount).expect("serializes");
        assert_eq!(json, r#""12.30""#);
        assert_eq!(
            serde_json::from_str::<Amount>(&json).expect("parses"),
            amount
        );
        assert!(serde_json::from_str::<Amount>(r#""1e19""#).is_err());
    }
}
