//! Payload templates (`Parameters`, `ResultSelector`, `ItemSelector`). INTERIM STUB.

use serde_json::Value;

use crate::Entropy;

/// What a template, path or intrinsic function is evaluated against.
pub struct Scope<'a> {
    /// The effective input (`$`).
    pub input: &'a Value,
    /// The context object (`$$`).
    pub context: &'a Value,
    /// Randomness for `States.UUID` and `States.MathRandom`.
    pub entropy: &'a mut Entropy,
}
