//! History that takes care of itself: Claude Code hooks that snapshot the home on Claude's own
//! events, scheduled backups to a bare store, a restore test that proves a snapshot can be
//! rolled back byte for byte, and `doctor`, which reports what needs attention.
//!
//! What a hook or a timer does on this machine is per-machine configuration kept in the store
//! (`meta` keys `care.*`, see store-format.md §9.10), never in the home: `settings.json` is
//! synced between machines, so the hook entries written there only say `sage hook <event>`.

pub mod backup;
pub mod config;
pub mod doctor;
pub mod hook_run;
pub mod hooks;
pub mod restore_test;
pub mod schedule;
