//! stub
pub mod validate;
