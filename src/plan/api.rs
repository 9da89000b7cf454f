//! REST or Bulk API 2.0: the one place a window's API is chosen.

use crate::config::Api;
use crate::schema::ObjectSchema;

/// Whether a window of `records` (`None`: not counted) is planned for Bulk API 2.0 under
/// `api`: in `auto`, a counted window of at least `BULK_MIN_RECORDS` of an object whose fields
/// Bulk can all select (an object Bulk refuses at run time goes to REST in [`run_window`]).
pub fn use_bulk(api: Api, records: Option<u64>, obj: &ObjectSchema) -> bool {
    match api {
        Api::Rest => false,
        Api::Bulk => true,
        Api::Auto => {
            obj.bulk_obstacle().is_none()
                && records.is_some_and(|n| n >= crate::plan::windows::BULK_MIN_RECORDS)
        }
    }
}
