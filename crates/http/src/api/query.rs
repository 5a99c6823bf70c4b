//! Validation of the history query's parameters.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::macros::{datetime, format_description};
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime};
use txwatch_domain::{Amount, UserId};
use txwatch_storage::PageQuery;

use crate::api::cursor::CursorCodec;
use crate::api::error::{ApiError, echo, quoting};

/// Rows per page when `limit` is absent.
pub(crate) const DEFAULT_LIMIT: u32 = 100;
/// Most rows per page.
pub(crate) const MAX_LIMIT: u32 = 1000;
/// How far back `from_date` defaults to.
const DEFAULT_LOOKBACK: Duration = Duration::days(30);

/// `GET /transactions` parameters as they arrive, all text so that every
/// problem is reported by us, with the parameter's name.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RawHistoryQuery {
    user_id: Option<String>,
    from_date: Option<String>,
    to_date: Option<String>,
    min_amount: Option<String>,
    max_amount: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

impl RawHistoryQuery {
    /// Checks every parameter and fills in defaults relative to `now`.
    pub(crate) fn validate(
        self,
        now: OffsetDateTime,
        cursors: &CursorCodec,
    ) -> Result<PageQuery, ApiError> {
        let user_id = match present(self.user_id) {
            None => return Err(ApiError::MissingParameter("user_id")),
            Some(text) => text.parse::<UserId>().map_err(|_| {
                ApiError::invalid("user_id", format!("`{}` is not a UUID", echo(&text)))
            })?,
        };
        let to = optional(self.to_date, "to_date", parse_instant)?.unwrap_or(now);
        let from =
            optional(self.from_date, "from_date", parse_instant)?.unwrap_or(now - DEFAULT_LOOKBACK);
        if from > to {
            return Err(ApiError::InvalidRange {
                low: "from_date",
                low_value: format_instant(from),
                high: "to_date",
                high_value: format_instant(to),
            });
        }
        let min_amount =
            optional(self.min_amount, "min_amount", parse_amount)?.unwrap_or(Amount::ZERO);
        let max_amount = optional(self.max_amount, "max_amount", parse_amount)?
            .unwrap_or_else(default_max_amount);
        if min_amount > max_amount {
            return Err(ApiError::InvalidRange {
                low: "min_amount",
                low_value: min_amount.to_string(),
                high: "max_amount",
                high_value: max_amount.to_string(),
            });
        }
        let limit = optional(self.limit, "limit", parse_limit)?.unwrap_or(DEFAULT_LIMIT);
        let after = match present(self.cursor) {
            None => None,
            Some(cursor) => Some(cursors.decode(user_id, &cursor)?),
        };
        Ok(PageQuery {
            user_id,
            from,
            to,
            min_amount,
            max_amount,
            limit,
            after,
        })
    }
}

/// An absent or empty parameter counts as not given (the old client sends
/// `cursor=` for the first page).
fn present(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

fn optional<T>(
    value: Option<String>,
    name: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, ApiError> {
    present(value)
        .map(|text| parse(text.trim()).map_err(|reason| ApiError::invalid(name, reason)))
        .transpose()
}

fn default_max_amount() -> Amount {
    Amount::from_cents(1_000_000_000_000).expect("10000000000.00 is within NUMERIC(20,2)")
}

fn parse_amount(text: &str) -> Result<Amount, String> {
    text.parse::<Amount>().map_err(|e| quoting(&e, text))
}

fn parse_limit(text: &str) -> Result<u32, String> {
    text.parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            format!(
                "`{}` is not a whole number from 1 to {MAX_LIMIT}",
                echo(text)
            )
        })
}

/// Reads an instant: RFC 3339 (`2026-01-31T12:00:00Z`, `...+05:30`), a date
/// alone (its midnight UTC), or a date and time without offset (UTC). A
/// space may stand for the `T`, and for the `+` of an offset that was not
/// URL-encoded (a bare `+` in a query string decodes to a space). Only the
/// years 0001 to 9999 (UTC) are accepted: Postgres refuses instants before
/// 4713 BC, and one past 9999 in UTC cannot be represented at all.
pub(crate) fn parse_instant(text: &str) -> Result<OffsetDateTime, String> {
    let at = read_instant(text).ok_or_else(|| {
        format!(
            "`{}` is not a date: use RFC 3339 such as 2026-01-31T12:00:00Z, \
             or a date such as 2026-01-31 (midnight UTC)",
            echo(text)
        )
    })?;
    if at < EARLIEST || at > LATEST {
        return Err(format!(
            "`{}` is outside the years 0001 to 9999 (UTC)",
            echo(text)
        ));
    }
    Ok(at)
}

/// The earliest and latest instants [`parse_instant`] accepts (and that a
/// cursor may carry).
pub(crate) const EARLIEST: OffsetDateTime = datetime!(0001-01-01 0:00 UTC);
pub(crate) const LATEST: OffsetDateTime = datetime!(9999-12-31 23:59:59.999_999_999 UTC);

/// The instant `text` names, in UTC, if it is one of the accepted forms.
fn read_instant(text: &str) -> Option<OffsetDateTime> {
    let mut normalized = text.to_owned();
    if normalized.len() > 10 && normalized.as_bytes()[10] == b' ' {
        normalized.replace_range(10..11, "T");
    }
    if let Some(at) = normalized.rfind(' ') {
        // `...12:00:00 05:30`: an offset whose `+` became a space.
        normalized.replace_range(at..at + 1, "+");
    }
    if let Ok(at) = OffsetDateTime::parse(&normalized, &Rfc3339) {
        // `9999-12-31T23:59:59-01:00` is past what a date holds in UTC.
        return at.checked_to_offset(time::UtcOffset::UTC);
    }
    let date_time = format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
    );
    if let Ok(at) = PrimitiveDateTime::parse(&normalized, &date_time) {
        return Some(at.assume_utc());
    }
    let date_only = format_description!(version = 2, "[year]-[month]-[day]");
    if let Ok(date) = Date::parse(&normalized, &date_only) {
        return Some(date.midnight().assume_utc());
    }
    None
}

pub(crate) fn format_instant(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_instant(text: &str, want: Option<OffsetDateTime>) {
        assert_eq!(parse_instant(text).ok(), want, "parsing {text:?}");
    }

    #[test]
    fn instants_accept_rfc3339_dates_and_offsetless_times() {
        check_instant(
            "2026-01-31T12:00:00Z",
            Some(datetime!(2026-01-31 12:00 UTC)),
        );
        check_instant(
            "2026-01-31T12:00:00.250Z",
            Some(datetime!(2026-01-31 12:00:00.25 UTC)),
        );
        check_instant(
            "2026-01-31T12:00:00+05:30",
            Some(datetime!(2026-01-31 06:30 UTC)),
        );
        check_instant(
            "2026-01-31T12:00:00 05:30",
            Some(datetime!(2026-01-31 06:30 UTC)),
        );
        check_instant(
            "2026-01-31T12:00:00-01:00",
            Some(datetime!(2026-01-31 13:00 UTC)),
        );
        check_instant("2026-01-31", Some(datetime!(2026-01-31 0:00 UTC)));
        check_instant("2026-01-31T12:00:00", Some(datetime!(2026-01-31 12:00 UTC)));
        check_instant("2026-01-31 12:00:00", Some(datetime!(2026-01-31 12:00 UTC)));
        check_instant("2026-01-31T12:00", Some(datetime!(2026-01-31 12:00 UTC)));
        check_instant(
            "2026-01-31T12:00:00.123456",
            Some(datetime!(2026-01-31 12:00:00.123456 UTC)),
        );
        check_instant("yesterday", None);
        check_instant("2026-13-01", None);
        check_instant("2026-02-30", None);
        check_instant("31/01/2026", None);
        check_instant("2026-01-31T25:00:00Z", None);
        check_instant("1706700000", None);
        // Beyond what Postgres or a UTC date holds: refused, not a panic or a 500.
        check_instant("9999-12-31T23:59:59-23:59", None);
        check_instant("-5000-01-01", None);
        check_instant("-0001-12-31T23:59:59Z", None);
        check_instant("0000-12-31T23:59:59Z", None);
        check_instant("0001-01-01", Some(datetime!(0001-01-01 0:00 UTC)));
        check_instant(
            "9999-12-31T23:59:59Z",
            Some(datetime!(9999-12-31 23:59:59 UTC)),
        );
    }

    fn check_limit(text: &str, want: Option<u32>) {
        assert_eq!(parse_limit(text).ok(), want, "limit {text:?}");
    }

    #[test]
    fn limits_are_whole_numbers_from_1_to_1000() {
        check_limit("1", Some(1));
        check_limit("1000", Some(1000));
        check_limit("0", None);
        check_limit("-1", None);
        check_limit("1001", None);
        check_limit("100000", None);
        check_limit("abc", None);
        check_limit("1.5", None);
        check_limit("99999999999999999999", None);
    }
}
