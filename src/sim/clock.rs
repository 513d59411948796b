//! Wall-clock timestamps and dates in Trustly's formats; the calendar is `trustly::time`.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::trustly::time::civil_from_days;

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
