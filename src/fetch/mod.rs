//! Fetching a window: REST query pages ([`rest`], [`query`]) or a Bulk API 2.0 job ([`bulk`]),
//! decoded into Arrow and handed to [`crate::commit`] day by day.

pub mod bulk;
pub mod deleted;
pub mod query;
pub mod reconcile;
pub mod rest;
