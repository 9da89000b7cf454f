//! Committing: a window's rows cut into day chunks, each written, passed through the day's
//! commit gate, recorded in its manifest and published to the Delta table.

pub mod committer;
pub mod current;
pub mod days;
pub mod delta;
pub mod gate;
pub mod job;
