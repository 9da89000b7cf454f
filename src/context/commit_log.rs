//! The day commit log entries a process has read (see [`crate::commit::gate`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use object_store::path::Path;

use crate::sink::manifest::Manifest;

/// Commit log entries this process has read (they never change), per destination.
#[derive(Default)]
pub struct LogCache {
    entries: Mutex<HashMap<String, Arc<Manifest>>>,
}

impl LogCache {
    pub(crate) fn get(&self, p: &Path) -> Option<Arc<Manifest>> {
        self.entries.lock().ok()?.get(p.as_ref()).cloned()
    }
    pub(crate) fn put(&self, p: &Path, m: Arc<Manifest>) {
        if let Ok(mut e) = self.entries.lock() {
            e.insert(p.to_string(), m);
        }
    }
}
