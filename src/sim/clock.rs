//! Wall-clock timestamps and dates in Trustly's formats, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC instant with microsecond precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    micros: i64,
}

impl Timestamp {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            micros: i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX),
        }
    }

    /// Trustly's notification/ledger format: `2015-03-12 15:14:18.616710+00`.
    pub fn trustly(self) -> String {
        let (date, secs_of_day) = self.split();
        format!(
            "{date} {:02}:{:02}:{:02}.{:06}+00",
            secs_of_day / 3600,
            secs_of_day / 60 % 60,
            secs_of_day % 60,
            self.micros.rem_euclid(1_000_000)
        )
    }

    /// The UTC calendar date, `YYYY-MM-DD`.
    pub fn date(self) -> String {
        self.split().0
    }

    fn split(self) -> (String, i64) {
        let secs = self.micros.div_euclid(1_000_000);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        (format!("{y:04}-{m:02}-{d:02}"), secs.rem_euclid(86_400))
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        let t = Timestamp {
            micros: 1_426_173_258_616_710,
        };
        assert_eq!(t.trustly(), "2015-03-12 15:14:18.616710+00");
        assert_eq!(t.date(), "2015-03-12");
        assert_eq!(
            Timestamp { micros: 0 }.trustly(),
            "1970-01-01 00:00:00.000000+00"
        );
        assert_eq!(
            Timestamp {
                micros: 951_782_400_000_000
            }
            .date(),
            "2000-02-29"
        );
    }
}
