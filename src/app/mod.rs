//! The commands' bodies, one file each (the arguments and dispatch are in [`crate::cli`]).

pub mod status;
