//! Trustly's calendar: `YYYY-MM-DD` dates, its timestamp text (`2015-03-12 15:14:18.61671+00`,
//! also `T` and `+HH:MM` forms) and the proleptic Gregorian day arithmetic under them, without a
//! date library. The one calendar of the crate: the API layer, the wire core and the simulator
//! all use it. Knows nothing of protobuf or of the transports.

/// A UTC instant: seconds since 1970-01-01 and the nanoseconds within that second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnixTime {
    pub seconds: i64,
    pub nanos: i32,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    // doy < 366 and mp < 12, so both fit in u32: the fallbacks are never taken.
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// True for a real calendar date written `YYYY-MM-DD` (Trustly's date format).
pub fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| {
        text.get(range)
            .filter(|part| part.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|part| part.parse::<u32>().ok())
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days_in_month).contains(&day)
}

/// Parses Trustly's timestamps (`2015-03-12 15:14:18.61671+00`, also `T` and `+HH:MM` forms).
pub fn parse_timestamp(text: &str) -> Option<UnixTime> {
    let text = text.trim();
    let (date, rest) = text.split_at_checked(10)?;
    let rest = rest.strip_prefix([' ', 'T'])?;
    let mut parts = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (
        parts.next()?.ok()?,
        parts.next()?.ok()?,
        parts.next()?.ok()?,
    );
    let (clock, offset_secs) = split_zone(rest)?;
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.split(':').map(str::parse::<i64>);
    let (h, mi, s) = (hms.next()?.ok()?, hms.next()?.ok()?, hms.next()?.ok()?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("{digits:0<9}").parse::<i32>().ok()?
    };
    let seconds = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + s - offset_secs;
    Some(UnixTime { seconds, nanos })
}

/// Splits `15:14:18.61671+01:00` into the clock text and the zone's offset in seconds.
fn split_zone(rest: &str) -> Option<(&str, i64)> {
    let Some(i) = rest.find(['+', '-', 'Z']) else {
        return Some((rest, 0));
    };
    let (clock, zone) = rest.split_at(i);
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let zone = zone.trim_start_matches(['+', '-', 'Z']).replace(':', "");
    let (hours, minutes) = match zone.len() {
        0 => (0, 0),
        2 => (zone.parse::<i64>().ok()?, 0),
        4 => (
            zone[..2].parse::<i64>().ok()?,
            zone[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    Some((clock, sign * (hours * 3600 + minutes * 60)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trustly_timestamps_parse() {
        let t = parse_timestamp("2015-03-12 15:14:18.61671+00").expect("parses");
        assert_eq!((t.seconds, t.nanos), (1_426_173_258, 616_710_000));
        let t = parse_timestamp("2013-12-20 14:42:04.675645+01").expect("parses");
        assert_eq!(t.seconds, 1_387_546_924);
        assert_eq!(
            parse_timestamp("2026-11-21T10:00:00Z").map(|t| t.seconds),
            Some(1_795_255_200)
        );
        for bad in [
            "",
            "2015-03-12",
            "yesterday",
            "2015-13-12 00:00:00",
            "2015-03-12 25:00:00+00",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn days_round_trip() {
        for days in [-800_000, -1, 0, 1, 11_016, 19_000, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
        }
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(days_from_civil(1970, 1, 1), 0);
    }

    #[test]
    fn dates_are_checked_against_the_calendar() {
        assert!(is_date("2024-02-29"));
        assert!(!is_date("2023-02-29"));
        assert!(!is_date("2023-04-31"));
        assert!(!is_date("2023-4-01"));
    }
}
