//! The conversion between `pb` messages and the payment use cases, by its parts: field checks
//! (`validate`), request building (`requests`) and response building (`responses`). This module
//! only gathers their public names under the path the rest of the adapter and the tests use.

pub use super::{
    requests::*,
    responses::*,
    validate::{Check, MAX_EXTRA_ATTRIBUTES, MAX_FIELD_CHARS, MAX_KEY_CHARS},
};
