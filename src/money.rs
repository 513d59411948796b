//! Exact money: [`Amount`] (a positive decimal with at most two decimals) and [`Currency`]
//! (ISO 4217). Strings are parsed into `rust_decimal` at the edge and printed back only when a
//! message is built. There are no floats anywhere.

use std::{fmt, str::FromStr};

use rust_decimal::Decimal;
use serde::{Serialize, Serializer};

/// Decimals Trustly accepts on amounts (spec §5: "exactly two decimals"; 615 otherwise).
pub const AMOUNT_SCALE: u32 = 2;
/// Longest amount string accepted: 26 integer digits + "." + 2 decimals still fits `Decimal`'s
/// 28 significant digits, and no real payment comes near it.
const MAX_AMOUNT_LEN: usize = 29;

/// Why a money field was refused. Messages are safe to show to API clients.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "amount must be a plain decimal string such as \"100.00\" (digits, optional '.' and up to two decimals)"
    )]
    AmountSyntax,
    #[error("amount must have at most {AMOUNT_SCALE} decimals")]
    AmountScale,
    #[error("amount must be greater than zero")]
    AmountNotPositive,
    #[error("currency must be an ISO 4217 code such as \"EUR\"")]
    Currency,
}

/// A payment amount: > 0 with at most two decimals. On the wire it is always a string with
/// exactly two decimals ("12.50").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(Decimal);

impl Amount {
    pub fn value(self) -> Decimal {
        self.0
    }

    /// Builds an amount from a decimal, applying the same rules as parsing.
    pub fn try_from_decimal(value: Decimal) -> Result<Self, MoneyError> {
        if value.scale() > AMOUNT_SCALE && value.normalize().scale() > AMOUNT_SCALE {
            return Err(MoneyError::AmountScale);
        }
        if value <= Decimal::ZERO {
            return Err(MoneyError::AmountNotPositive);
        }
        let mut value = value;
        value.rescale(AMOUNT_SCALE);
        Ok(Self(value))
    }
}

impl FromStr for Amount {
    type Err = MoneyError;

    /// Accepts `digits[.digits]` only: no sign, exponent, grouping or whitespace, so what the
    /// caller wrote is exactly what is charged.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits_only = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if s.is_empty()
            || s.len() > MAX_AMOUNT_LEN
            || int.is_empty()
            || !digits_only(int)
            || !digits_only(frac)
            || (s.contains('.') && frac.is_empty())
        {
            return Err(MoneyError::AmountSyntax);
        }
        if frac.len() > AMOUNT_SCALE as usize {
            return Err(MoneyError::AmountScale);
        }
        let value = Decimal::from_str_exact(s).map_err(|_| MoneyError::AmountSyntax)?;
        Self::try_from_decimal(value)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The scale is fixed at construction, so this always prints two decimals.
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// An ISO 4217 alphabetic currency code.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const EUR: Currency = Currency(*b"EUR");

    pub fn as_str(&self) -> &str {
        // invariant: constructed only from three ASCII uppercase letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes: [u8; 3] = s.as_bytes().try_into().map_err(|_| MoneyError::Currency)?;
        if ISO_4217_CODES.lines().any(|code| code == s) {
            Ok(Self(bytes))
        } else {
            Err(MoneyError::Currency)
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An amount in a currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Money {
    pub amount: Amount,
    pub currency: Currency,
}

/// Active ISO 4217 currency codes, one a line in ascending order, without the precious-metal,
/// bond-unit and testing codes (XAU, XBA, XTS, XXX, ...) that no payment uses. HRK stays: Trustly
/// still lists it (spec §5). Kept as a data file so a change to the ISO list is a one-line diff;
/// a linear scan of its 170 codes costs well under a microsecond, far below anything a request does.
const ISO_4217_CODES: &str = include_str!("money/iso_4217.txt");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_table_is_sorted_unique_codes() {
        let codes: Vec<&str> = ISO_4217_CODES.lines().collect();
        assert!(codes.windows(2).all(|w| w[0] < w[1]));
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase())),
            "one three-letter code a line, nothing else"
        );
    }

    #[test]
    fn amounts_print_with_two_decimals() {
        for (input, wire) in [
            ("100", "100.00"),
            ("12.5", "12.50"),
            ("0.01", "0.01"),
            ("007.10", "7.10"),
        ] {
            assert_eq!(
                input.parse::<Amount>().map(|a| a.to_string()),
                Ok(wire.to_owned())
            );
        }
    }

    #[test]
    fn bad_amounts_are_refused_with_a_reason() {
        use MoneyError::*;
        for (input, error) in [
            ("", AmountSyntax),
            ("1e3", AmountSyntax),
            ("-1.00", AmountSyntax),
            ("+1", AmountSyntax),
            ("1,00", AmountSyntax),
            (" 1", AmountSyntax),
            ("1.", AmountSyntax),
            (".5", AmountSyntax),
            ("NaN", AmountSyntax),
            ("1.001", AmountScale),
            ("0", AmountNotPositive),
            ("0.00", AmountNotPositive),
            ("99999999999999999999999999999.00", AmountSyntax),
        ] {
            assert_eq!(input.parse::<Amount>(), Err(error), "input {input:?}");
        }
    }

    #[test]
    fn decimals_follow_the_same_rules() {
        assert!(Amount::try_from_decimal(Decimal::new(1001, 3)).is_err());
        assert_eq!(
            Amount::try_from_decimal(Decimal::new(1500, 3)).map(|a| a.to_string()),
            Ok("1.50".to_owned())
        );
    }

    #[test]
    fn currencies_are_iso_4217() {
        assert_eq!(
            "SEK".parse::<Currency>().map(|c| c.to_string()),
            Ok("SEK".into())
        );
        for bad in ["sek", "SEKK", "XXX", "ABC", "", "€"] {
            assert_eq!(
                bad.parse::<Currency>(),
                Err(MoneyError::Currency),
                "{bad:?}"
            );
        }
    }
}
