//! Trustly's JSON-RPC error codes (spec §6), with how a caller may react to each.

use std::fmt;

/// What a caller may do after Trustly answered with an error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryClass {
    /// The request was refused for good: fix the input or the business state.
    Never,
    /// Refused because of merchant configuration (credentials, keys, access): fix config.
    Configuration,
    /// The outcome is unknown (620): retry only by replaying the identical request (same UUID,
    /// same bytes), then escalate.
    IdenticalReplay,
}

macro_rules! error_codes {
    ($( $variant:ident = $code:literal, $name:literal, $retry:ident; )*) => {
        /// A Trustly error code. Codes Trustly does not document keep their number and name in
        /// [`ErrorCode::Other`].
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub enum ErrorCode {
            $( $variant, )*
            /// A code this build does not know; its retry class is `Never`.
            Other { code: i64, name: String },
        }

        impl ErrorCode {
            /// Looks a code up by number, keeping Trustly's message as the name if unknown.
            pub fn from_code(code: i64, message: &str) -> Self {
                match code {
                    $( $code => ErrorCode::$variant, )*
                    _ => ErrorCode::Other { code, name: message.to_owned() },
                }
            }

            /// The numeric code.
            pub fn code(&self) -> i64 {
                match self {
                    $( ErrorCode::$variant => $code, )*
                    ErrorCode::Other { code, .. } => *code,
                }
            }

            /// Trustly's error name, e.g. `ERROR_INVALID_CREDENTIALS`.
            pub fn name(&self) -> &str {
                match self {
                    $( ErrorCode::$variant => $name, )*
                    ErrorCode::Other { name, .. } => name,
                }
            }

            pub fn retry_class(&self) -> RetryClass {
                match self {
                    $( ErrorCode::$variant => RetryClass::$retry, )*
                    ErrorCode::Other { .. } => RetryClass::Never,
                }
            }

            /// Every code this build knows.
            pub const KNOWN: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];
        }
    };
}

error_codes! {
    FunctionAccessDenied = 602, "ERROR_FUNCTION_ACCESS_DENIED", Configuration;
    HostAccessDenied = 607, "ERROR_HOST_ACCESS_DENIED", Configuration;
    InvalidAmount = 615, "ERROR_INVALID_AMOUNT", Never;
    InvalidCredentials = 616, "ERROR_INVALID_CREDENTIALS", Configuration;
    Unknown = 620, "ERROR_UNKNOWN", IdenticalReplay;
    InvalidCurrencyCode = 622, "ERROR_INVALID_CURRENCY_CODE", Never;
    InvalidParameters = 623, "ERROR_INVALID_PARAMETERS", Never;
    UnableToVerifyRsaSignature = 636, "ERROR_UNABLE_TO_VERIFY_RSA_SIGNATURE", Configuration;
    DuplicateMessageId = 637, "ERROR_DUPLICATE_MESSAGE_ID", Never;
    EnduserIsBlocked = 638, "ERROR_ENDUSER_IS_BLOCKED", Never;
    NoPublicKey = 639, "ERROR_NO_PUBLIC_KEY", Configuration;
    InvalidEmail = 642, "ERROR_INVALID_EMAIL", Never;
    InvalidLocale = 645, "ERROR_INVALID_LOCALE", Never;
    InvalidOrderId = 655, "ERROR_INVALID_ORDER_ID", Never;
    DuplicateUuid = 688, "ERROR_DUPLICATE_UUID", Never;
    EnduserIdIsNull = 696, "ERROR_ENDUSERID_IS_NULL", Never;
    MessageIdIsNull = 697, "ERROR_MESSAGEID_IS_NULL", Never;
    InvalidIp = 698, "ERROR_INVALID_IP", Never;
    MalformedSuccessUrl = 700, "ERROR_MALFORMED_SUCCESSURL", Never;
    MalformedFailUrl = 701, "ERROR_MALFORMED_FAILURL", Never;
    MalformedTemplateUrl = 702, "ERROR_MALFORMED_TEMPLATEURL", Never;
    MalformedUrlTarget = 703, "ERROR_MALFORMED_URLTARGET", Never;
    MalformedMessageId = 704, "ERROR_MALFORMED_MESSAGEID", Never;
    MalformedNotificationUrl = 705, "ERROR_MALFORMED_NOTIFICATIONURL", Never;
    MalformedEnduserId = 706, "ERROR_MALFORMED_ENDUSERID", Never;
    DirectDebitNotAllowed = 712, "ERROR_DIRECT_DEBIT_NOT_ALLOWED", Configuration;
    InvalidOrderAttribute = 717, "ERROR_INVALID_ORDER_ATTRIBUTE", Never;
    DisabledUser = 718, "ERROR_DISABLED_USER", Configuration;
    PayAndPlayNotAllowed = 732, "ERROR_PAY_AND_PLAY_NOT_ALLOWED", Configuration;
    NotSecureNotificationUrl = 734, "ERROR_NOT_SECURE_NOTIFICATIONURL", Never;
    InvalidCountry = 737, "ERROR_INVALID_COUNTRY", Never;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for known in ErrorCode::KNOWN {
            assert!(seen.insert(known.code()), "duplicate code {}", known.code());
            assert_eq!(&ErrorCode::from_code(known.code(), "ignored"), known);
            assert!(known.name().starts_with("ERROR_"));
        }
    }

    #[test]
    fn only_620_is_replayable() {
        assert_eq!(
            ErrorCode::Unknown.retry_class(),
            RetryClass::IdenticalReplay
        );
        assert_eq!(
            ErrorCode::InvalidCredentials.retry_class(),
            RetryClass::Configuration
        );
        assert_eq!(
            ErrorCode::DuplicateMessageId.retry_class(),
            RetryClass::Never
        );
        let other = ErrorCode::from_code(999, "ERROR_NEW_THING");
        assert_eq!(other.name(), "ERROR_NEW_THING");
        assert_eq!(other.retry_class(), RetryClass::Never);
    }
}
