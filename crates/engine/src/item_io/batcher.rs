//! ItemBatcher: items grouped into the batches child executions receive.

use asl::error::ErrorCause;
use serde_json::{Map, Value};

use super::MAX_BATCH_BYTES;

/// Groups items into the batches child executions receive: `{"BatchInput": …, "Items": […]}`
/// (`BatchInput` only when the batcher has one), each within `MaxItemsPerBatch` items and
/// `MaxInputBytesPerBatch` bytes (see the module docs for how bytes are counted).
pub fn batch_items(items: Vec<Value>, item_batcher: &Value) -> Result<Vec<Value>, ErrorCause> {
    let obj = item_batcher
        .as_object()
        .ok_or_else(|| ErrorCause::runtime("ItemBatcher must be an object"))?;
    let max_items = positive(obj, "MaxItemsPerBatch")?;
    let max_bytes = positive(obj, "MaxInputBytesPerBatch")?
        .unwrap_or(MAX_BATCH_BYTES)
        .min(MAX_BATCH_BYTES);
    let batch_input = obj.get("BatchInput");
    let envelope = |items: Vec<Value>| {
        let mut batch = Map::new();
        if let Some(input) = batch_input {
            batch.insert("BatchInput".into(), input.clone());
        }
        batch.insert("Items".into(), Value::Array(items));
        Value::Object(batch)
    };
    // The size of a batch without items; each item adds its own size and a comma.
    let empty = envelope(Vec::new()).to_string().len();
    let mut batches = Vec::new();
    let mut current: Vec<Value> = Vec::new();
    let mut size = empty;
    for item in items {
        let item_size = item.to_string().len();
        let full = max_items.is_some_and(|m| current.len() >= m)
            || size + item_size + usize::from(!current.is_empty()) > max_bytes;
        if full && !current.is_empty() {
            batches.push(envelope(std::mem::take(&mut current)));
            size = empty;
        }
        if size + item_size > max_bytes {
            return Err(ErrorCause::runtime(format!(
                "An item of {item_size} bytes does not fit in a batch of at most {max_bytes} bytes (MaxInputBytesPerBatch)"
            )));
        }
        size += item_size + usize::from(!current.is_empty());
        current.push(item);
    }
    if !current.is_empty() {
        batches.push(envelope(current));
    }
    Ok(batches)
}

/// An optional positive integer field of the batcher.
pub(super) fn positive(obj: &Map<String, Value>, name: &str) -> Result<Option<usize>, ErrorCause> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            _ => Err(ErrorCause::runtime(format!(
                "field {name} must be a positive integer, got {v}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn batches_respect_item_counts() {
        let items: Vec<Value> = (1..=5).map(Value::from).collect();
        let batches = batch_items(items, &json!({"MaxItemsPerBatch": 2})).expect("batches");
        assert_eq!(
            batches,
            vec![
                json!({"Items": [1, 2]}),
                json!({"Items": [3, 4]}),
                json!({"Items": [5]}),
            ]
        );
        let with_input = batch_items(
            vec![json!("a")],
            &json!({"MaxItemsPerBatch": 10, "BatchInput": {"k": "v"}}),
        )
        .expect("batches");
        assert_eq!(
            with_input,
            vec![json!({"BatchInput": {"k": "v"}, "Items": ["a"]})]
        );
        assert_eq!(
            batch_items(Vec::new(), &json!({"MaxItemsPerBatch": 1})),
            Ok(vec![])
        );
    }

    #[test]
    fn batches_respect_byte_limits() {
        // {"Items":[]} is 12 bytes; "aaaa" is 6, plus a comma after the first.
        let items = vec![json!("aaaa"); 5];
        let batches =
            batch_items(items.clone(), &json!({"MaxInputBytesPerBatch": 25})).expect("ok");
        assert_eq!(batches.len(), 3);
        for b in &batches {
            assert!(b.to_string().len() <= 25, "{b}");
        }
        // Exactly at the limit: {"Items":["aaaa","aaaa"]} is 25 bytes.
        assert_eq!(batches[0], json!({"Items": ["aaaa", "aaaa"]}));
        // Both limits: the tighter one wins.
        let batches = batch_items(
            items,
            &json!({"MaxInputBytesPerBatch": 1000, "MaxItemsPerBatch": 4}),
        )
        .expect("ok");
        assert_eq!(batches.len(), 2);
        // BatchInput counts.
        let e = batch_items(
            vec![json!("aaaa")],
            &json!({"MaxInputBytesPerBatch": 20, "BatchInput": {"x": 1}}),
        )
        .expect_err("too big");
        assert_eq!(e.error_name(), "States.Runtime");
        assert!(batch_items(vec![json!(1)], &json!({"MaxItemsPerBatch": 0})).is_err());
        assert!(batch_items(vec![json!(1)], &json!({"MaxItemsPerBatch": "2"})).is_err());
        // Without MaxInputBytesPerBatch, 256 KiB still bounds a batch.
        let big = json!("x".repeat(200 * 1024));
        let batches =
            batch_items(vec![big.clone(), big], &json!({"MaxItemsPerBatch": 10})).expect("ok");
        assert_eq!(batches.len(), 2);
    }
}
