//! Reading back JSON the engine wrote itself (checkpoints, lane rows, Map Run items).
//!
//! serde_json refuses text nested more than 128 levels, but what the engine stores nests
//! deeper than the values inside it: a checkpoint wraps each value (up to
//! [`asl::json::MAX_DEPTH`] levels) in the runtime's own structure, once per nested Parallel
//! or Map. Whatever was accepted must load back, so this reader has no depth limit and grows
//! its stack on the heap as it descends (serde_stacker) instead of overflowing it.

use serde::de::DeserializeOwned;

/// Parses `text` at any depth.
pub fn from_str<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    de.disable_recursion_limit();
    let value = T::deserialize(serde_stacker::Deserializer::new(&mut de))?;
    de.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn reads_what_serde_json_refuses() {
        let deep = format!("{}1{}", "[".repeat(2_000), "]".repeat(2_000));
        assert!(serde_json::from_str::<Value>(&deep).is_err());
        let value: Value = super::from_str(&deep).expect("deep text loads");
        assert!(asl::json::deeper_than(&value, 1_999));
        asl::json::dismantle(value);
        assert!(super::from_str::<Value>("[1] trailing").is_err());
    }
}
