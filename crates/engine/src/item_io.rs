//! A Distributed Map's data going to and from S3: reading items (`ItemReader`), batching
//! them (`ItemBatcher`), and exporting the child executions' results (`ResultWriter`), with
//! the shapes and error names AWS documents.
//!
//! Only [`read_items`] and [`Export`] do IO (through [`crate::s3`]); parsing, batching, result
//! shaping and file assembly are pure, tested here without a server. Arguments arrive
//! evaluated: `Parameters`/`Arguments` resolved, every `…Path` field of `ReaderConfig` and
//! `ItemBatcher` already replaced by its value.
//!
//! What AWS documents, and what we do:
//! - **JSON**: the object must hold a top-level array; anything else fails with
//!   `Attempting to map over non-iterable node.` **JSONL**: one JSON value per non-blank line.
//! - **CSV**: rows become objects keyed by the headers (`FIRST_ROW`, or `GIVEN` in
//!   `CSVHeaders`), in header order but for an empty header's key, which comes first (AWS's
//!   recording), every value a string. Fields are split on
//!   `CSVDelimiter` (`COMMA` by default, `PIPE`, `SEMICOLON`, `SPACE`, `TAB`), records on
//!   newlines; double quotes enclose delimiters and newlines and are kept by doubling them; a
//!   backslash escapes a backslash, a double quote or the delimiter and is dropped before any
//!   other character. Missing fields are empty strings, extra fields are skipped, duplicate
//!   headers fail with `CSV headers cannot contain duplicates.`; blank lines are skipped.
//! - **listObjectsV2**: every object under `Prefix` (all pages), each item
//!   `{"Etag", "Key", "LastModified" (epoch seconds), "Size", "StorageClass"}`. With
//!   `ReaderConfig.Transformation: LOAD_AND_FLATTEN` the objects are read instead, with
//!   `InputType`, and their items concatenated (keys ending in `/` are skipped).
//! - **MANIFEST** (`S3_INVENTORY`): the manifest's data files are read as headerless CSV
//!   keyed by its `fileSchema`. Gzip-compressed data files (`.gz`, what S3 Inventory
//!   writes) are not supported yet and fail with a clear cause.
//! - `MaxItems` caps the items (after the CSV header row); `0` means no cap, the cap is
//!   at most 100,000,000.
//! - Failures: `States.ItemReaderFailed` when reading or parsing fails (S3 errors quoted the
//!   way the AWS Java SDK renders them; the Map Run has started, with no items, and fails), `States.ResultWriterFailed` when exporting fails,
//!   `States.Runtime` for an `ItemBatcher` that cannot be honoured.
//!
//! **Batch size.** `MaxInputBytesPerBatch` is measured on what the child receives: the
//! compact JSON of the whole batch object (`{"BatchInput":…,"Items":[…]}`), in UTF-8 bytes.
//! It never exceeds 256 KiB, the largest input an execution takes, and that ceiling applies
//! when only `MaxItemsPerBatch` is set. An item that does not fit in a batch on its own fails
//! with `States.Runtime`.
//!
//! **Result files.** `PREFIX/<map run id>/manifest.json` lists the files written, by status:
//! `SUCCEEDED_0.json`, `FAILED_0.json` (failed, timed out and aborted children) and
//! `PENDING_0.json`, a file only when it has entries. Without a `WriterConfig` (the original
//! format) each entry carries `Input` and `Output` as JSON text; with one, as JSON values,
//! `Transformation` applies to succeeded children (`COMPACT`: their outputs; `FLATTEN`: the
//! same with array outputs spliced in) and `OutputType: JSONL` writes one entry per line.
//! Entry fields are in AWS's (alphabetical) order. The results arrive in item order and each
//! file is uploaded while it grows ([`Export`]), so an export of any size holds about one
//! 5 MiB part per file. Without S3 (no `ResultWriter`, or only a `WriterConfig`) the results
//! are the Map state's output, which may not exceed 256 KiB ([`ResultArray`]): past that the
//! Map Run fails with `States.DataLimitExceeded`.

use asl::error::{names, ErrorCause};

mod batcher;
mod csv;
mod reader;
mod writer;

pub use batcher::batch_items;
pub use csv::csv_records;
pub use reader::{object_item, parse_items, read_items, HeaderLocation, InputType, ReaderConfig};
pub use writer::{
    result_entry, ChildResult, ChildStatus, Export, ExportTarget, FileAssembly, OutputType,
    ResultArray, Transformation, WriterConfig,
};

/// The most items a reader yields (AWS's ceiling for `MaxItems`).
pub const MAX_ITEMS_CEILING: usize = 100_000_000;
/// The largest batch: 256 KiB, the largest execution input.
pub const MAX_BATCH_BYTES: usize = 256 * 1024;

/// `States.ItemReaderFailed`: the Map state could not read its items.
fn reader_failed(cause: impl Into<String>) -> ErrorCause {
    ErrorCause::new(names::ITEM_READER_FAILED, cause)
}

/// `States.ResultWriterFailed`: the Map state could not export its results.
fn writer_failed(cause: impl Into<String>) -> ErrorCause {
    ErrorCause::new(names::RESULT_WRITER_FAILED, cause)
}

/// A result larger than a state's output may be.
fn data_limit(state: &str) -> ErrorCause {
    ErrorCause::new(
        names::DATA_LIMIT_EXCEEDED,
        format!(
            "The state/task '{state}' returned a result with a size exceeding the maximum number of bytes service limit."
        ),
    )
}
