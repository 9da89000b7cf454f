//! Planning: record counts, query windows and which API fetches each.

pub mod api;
pub mod counts;
pub mod estimate;
pub mod windows;
